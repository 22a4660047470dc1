#!/usr/bin/env python3
"""Writes the seed corpus of the `h2_reader` fuzz target (fuzz/corpus/h2_reader/).

Each seed is what a server sends on an HTTP/2 connection, built here from frames
(RFC 9113) and HPACK (RFC 7541, literals and table indices; real Huffman comes from the
captures). A seed that starts with a byte of 0xf0 or more carries the control bytes of
`check_h2_reader` (chunk lengths, a small cap) in front; see fuzz/README.md.

    fuzz/h2_seeds.py              # the built seeds
    fuzz/h2_seeds.py --capture    # also real bytes from nghttpd (Debian nghttp2-server),
                                  # python's http.server and openssl s_server, on 127.0.0.1

Captures listen on loopback only and are written as `nghttpd-*`, `http1-server-*` and
`tls-server-*`; a tool that is missing is skipped.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2_reader")

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0x0, 0x1, 0x2, 0x3, 0x4, 0x5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x6, 0x7, 0x8, 0x9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


SETTINGS_ACK = frame(SETTINGS, ACK, 0)
# What nginx, h2o and nghttpd open with: MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE,
# MAX_FRAME_SIZE.
OPEN = settings((0x3, 100), (0x4, 65535), (0x5, 16384))


def integer(value, prefix_bits, first=0):
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 | 0x80)
        value //= 128
    out.append(value)
    return bytes(out)


def string(s):
    s = s if isinstance(s, bytes) else s.encode()
    return integer(len(s), 7) + s


def idx(i):
    """An indexed field (static table 1-61, dynamic from 62)."""
    return integer(i, 7, 0x80)


def lit(name, value):
    """A literal field without indexing, with a literal name."""
    return b"\x00" + string(name) + string(value)


def lit_name(i, value):
    """A literal field without indexing, its name from table entry `i`."""
    return integer(i, 4) + string(value)


def inc(name, value):
    """A literal field with incremental indexing (it enters the dynamic table)."""
    return b"\x40" + string(name) + string(value)


def size_update(n):
    return integer(n, 5, 0x20)


S200, S204, S304, S404, S500 = idx(8), idx(9), idx(11), idx(13), idx(14)
SERVER, DATE, CONTENT_TYPE, CONTENT_LENGTH, LOCATION = 54, 33, 31, 28, 46
SET_COOKIE, CACHE_CONTROL, LINK, VARY, ETAG, LAST_MODIFIED = 55, 24, 45, 59, 34, 44


def headers(block, stream=1, flags=END_HEADERS):
    return frame(HEADERS, flags, stream, block)


def goaway(last, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def status(code):
    return lit_name(8, str(code))


NGINX_HEAD = (
    S200
    + lit_name(SERVER, "nginx/1.25.3")
    + lit_name(DATE, "Sat, 07 Dec 2024 03:33:00 GMT")
    + lit_name(CONTENT_TYPE, "text/html; charset=utf-8")
    + lit_name(CONTENT_LENGTH, "615")
    + lit_name(LAST_MODIFIED, "Tue, 24 Oct 2023 13:46:47 GMT")
    + lit("strict-transport-security", "max-age=31536000")
    + lit_name(SET_COOKIE, "a=1; Path=/")
    + lit_name(SET_COOKIE, "b=2; Path=/; Secure")
)
BODY = frame(DATA, END_STREAM, 1, b"<!DOCTYPE html><title>x</title>")


def seeds():
    s = {}
    # --- the ordinary conversation -------------------------------------------------
    s["settings-ack-headers-200"] = OPEN + SETTINGS_ACK + headers(NGINX_HEAD) + BODY
    s["settings-headers-200-end-stream"] = OPEN + headers(
        S204 + lit_name(SERVER, "h2o"), flags=END_HEADERS | END_STREAM
    )
    s["settings-empty-then-200"] = frame(SETTINGS, 0, 0) + SETTINGS_ACK + headers(S200)
    s["settings-twice-two-acks"] = OPEN + settings((0x1, 8192)) + SETTINGS_ACK + headers(S304)
    s["settings-unknown-ids-ignored"] = settings((0x8, 1), (0xff, 7), (0x10, 0)) + headers(S404)
    s["settings-only-partial"] = OPEN + SETTINGS_ACK
    s["settings-max-header-list-and-table"] = settings((0x1, 0), (0x6, 1024)) + headers(S200)
    s["cloudflare-301"] = OPEN + SETTINGS_ACK + headers(
        lit_name(8, "301")
        + lit_name(DATE, "Sat, 07 Dec 2024 03:33:00 GMT")
        + lit_name(CONTENT_TYPE, "text/html")
        + lit_name(LOCATION, "https://www.example.com/")
        + lit("cf-ray", "8ee0a1b2c3d4e5f6-FRA")
        + lit_name(SERVER, "cloudflare")
        + lit("alt-svc", 'h3=":443"; ma=86400')
    )
    # --- a block across CONTINUATION frames ----------------------------------------
    block = NGINX_HEAD
    a, b, c = block[:5], block[5:40], block[40:]
    s["headers-continuation"] = (
        OPEN
        + frame(HEADERS, 0, 1, a)
        + frame(CONTINUATION, 0, 1, b)
        + frame(CONTINUATION, END_HEADERS, 1, c)
    )
    s["headers-continuation-empty-fragments"] = (
        OPEN
        + frame(HEADERS, 0, 1, b"")
        + frame(CONTINUATION, 0, 1, b"")
        + frame(CONTINUATION, END_HEADERS, 1, S200)
    )
    s["continuation-interleaved-ping"] = (
        OPEN + frame(HEADERS, 0, 1, S200) + frame(PING, 0, 0, b"12345678")
    )
    s["continuation-without-headers"] = OPEN + frame(CONTINUATION, END_HEADERS, 1, S200)
    s["continuation-other-stream"] = (
        OPEN + frame(HEADERS, 0, 1, S200) + frame(CONTINUATION, END_HEADERS, 3, b"")
    )
    # --- interim heads ------------------------------------------------------------------
    s["early-hints-103-then-200"] = (
        OPEN
        + headers(
            lit_name(8, "103")
            + lit_name(LINK, "</style.css>; rel=preload; as=style")
            + lit_name(LINK, "</app.js>; rel=preload; as=script")
        )
        + headers(NGINX_HEAD)
        + BODY
    )
    s["interim-100-102-103-then-204"] = OPEN + b"".join(
        headers(status(c)) for c in (100, 102, 103)
    ) + headers(S204, flags=END_HEADERS | END_STREAM)
    s["interim-103-end-stream"] = OPEN + headers(status(103), flags=END_HEADERS | END_STREAM)
    s["interim-only-partial"] = OPEN + headers(status(103) + lit_name(LINK, "</a>"))
    s["status-101-forbidden"] = OPEN + headers(status(101) + lit("upgrade", "websocket"))
    # --- GOAWAY -------------------------------------------------------------------------
    s["goaway-no-error-before-stream-1"] = OPEN + goaway(0, 0x0)
    s["goaway-protocol-error-debug"] = OPEN + goaway(0, 0x1, b"invalid frame")
    s["goaway-enhance-your-calm"] = OPEN + goaway(1, 0xB, b"too_many_pings")
    s["goaway-http-1-1-required"] = OPEN + goaway(0, 0xD)
    s["goaway-unknown-code"] = OPEN + goaway(0x7FFFFFFF, 0x1F, b"\x00\x1b[31mred\x85\xff")
    s["goaway-reserved-bit-last-stream"] = OPEN + goaway(0x80000001, 0x2)
    s["goaway-debug-long"] = OPEN + goaway(0, 0x2, b"x" * 400)
    s["goaway-graceful-then-200"] = OPEN + goaway(1, 0x0) + headers(S200 + lit_name(SERVER, "x"))
    s["goaway-too-short"] = OPEN + frame(GOAWAY, 0, 0, b"\x00\x00\x00\x01")
    s["goaway-on-stream-1"] = OPEN + frame(GOAWAY, 0, 1, struct.pack(">II", 1, 0))
    # --- RST_STREAM ---------------------------------------------------------------------
    s["rst-stream-refused-stream"] = OPEN + SETTINGS_ACK + frame(RST_STREAM, 0, 1, struct.pack(">I", 0x7))
    s["rst-stream-cancel"] = OPEN + frame(RST_STREAM, 0, 1, struct.pack(">I", 0x8))
    s["rst-stream-unknown-code"] = OPEN + frame(RST_STREAM, 0, 1, struct.pack(">I", 0xDEAD))
    s["rst-stream-other-stream-then-200"] = (
        OPEN + frame(RST_STREAM, 0, 3, struct.pack(">I", 0x5)) + headers(S200)
    )
    s["rst-stream-bad-size"] = OPEN + frame(RST_STREAM, 0, 1, b"\x00\x00\x07")
    s["rst-stream-on-stream-0"] = OPEN + frame(RST_STREAM, 0, 0, struct.pack(">I", 0x1))
    # --- PING, WINDOW_UPDATE, PRIORITY, unknown types ------------------------------------
    s["ping-then-200"] = OPEN + frame(PING, 0, 0, b"\x00\x01\x02\x03\x04\x05\x06\x07") + headers(S200)
    s["ping-ack-not-answered"] = OPEN + frame(PING, ACK, 0, b"12345678") + headers(S200)
    s["ping-on-stream-1"] = OPEN + frame(PING, 0, 1, b"12345678")
    s["ping-bad-size"] = OPEN + frame(PING, 0, 0, b"1234567")
    s["window-update-then-200"] = (
        OPEN
        + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFF0000))
        + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1))
        + headers(S200)
    )
    s["window-update-zero-and-bad-size"] = (
        OPEN + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)) + frame(WINDOW_UPDATE, 0, 0, b"\x01")
    )
    s["priority-frame-then-200"] = (
        OPEN + frame(PRIORITY, 0, 1, b"\x80\x00\x00\x00\xff") + headers(S200)
    )
    s["priority-frame-bad-size"] = OPEN + frame(PRIORITY, 0, 1, b"\x00\x00\x00\x00")
    s["unknown-frame-types-ignored"] = (
        OPEN
        + frame(0xA, 0, 0, b"\x00\x09example.com" + b'h2=":443"')  # ALTSVC
        + frame(0xC, 0, 0, b"\x00\x13https://example.com")  # ORIGIN
        + frame(0xFF, 0xFF, 1, b"\xff" * 8)
        + headers(S200)
    )
    s["push-promise-refused"] = OPEN + frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02" + S200)
    # --- DATA ---------------------------------------------------------------------------
    s["data-before-headers"] = OPEN + frame(DATA, 0, 1, b"body first") + headers(S200)
    s["data-other-stream-then-200"] = OPEN + frame(DATA, 0, 3, b"xyz") + headers(S200)
    s["data-on-stream-0"] = OPEN + frame(DATA, 0, 0, b"xyz")
    # --- padding and priority flags -------------------------------------------------------
    s["headers-padded"] = OPEN + headers(
        bytes([10]) + NGINX_HEAD + b"\x00" * 10, flags=END_HEADERS | PADDED
    )
    s["headers-padded-zero-length"] = OPEN + headers(b"\x00" + S200, flags=END_HEADERS | PADDED)
    s["headers-padded-all-padding"] = OPEN + headers(b"\x05" + b"\x00" * 5, flags=END_HEADERS | PADDED)
    s["headers-padding-too-long"] = OPEN + headers(b"\xff" + S200, flags=END_HEADERS | PADDED)
    s["headers-padded-no-pad-length"] = OPEN + headers(b"", flags=END_HEADERS | PADDED)
    s["headers-priority-flag"] = OPEN + headers(
        b"\x80\x00\x00\x03\x0f" + S200 + lit_name(SERVER, "x"), flags=END_HEADERS | PRIORITY_FLAG
    )
    s["headers-priority-flag-short"] = OPEN + headers(b"\x00\x00", flags=END_HEADERS | PRIORITY_FLAG)
    s["headers-padded-and-priority"] = OPEN + headers(
        b"\x03" + b"\x00\x00\x00\x00\x10" + S200 + b"pad",
        flags=END_HEADERS | PADDED | PRIORITY_FLAG | END_STREAM,
    )
    s["continuation-padded-flag-is-not-padding"] = (
        OPEN + frame(HEADERS, 0, 1, b"") + frame(CONTINUATION, END_HEADERS | PADDED, 1, S200)
    )
    # --- the cap ------------------------------------------------------------------------
    # ":status" + "200" + 32 = 42, "a" + 13 bytes + 32 = 46: 88, the cap 16 + 8 x 9.
    exact = OPEN + headers(S200 + lit("a", "0123456789abc"))
    s["cap-88-exact"] = b"\xf8\x09" + exact
    s["cap-88-over-by-one"] = b"\xf8\x09" + OPEN + headers(S200 + lit("a", "0123456789abcd"))
    s["cap-counts-interim-blocks"] = b"\xf9\x0b\x14" + OPEN + headers(
        status(103) + lit_name(LINK, "</a.css>; rel=preload")
    ) + headers(S200 + lit_name(SERVER, "x" * 80))
    # A 4000-byte entry in the dynamic table, then named by one byte, again and again:
    # 17 x 4032 > 65536 decoded from a block of a few bytes.
    big = inc("x-big", "b" * 4000)
    s["huge-header-list-table-amplification"] = OPEN + headers(S200 + big + idx(62) * 17)
    s["huge-header-list-many-fields"] = OPEN + frame(HEADERS, 0, 1, S200) + b"".join(
        frame(CONTINUATION, 0, 1, b"".join(lit("x-%d" % (i * 200 + j), "v" * 60) for j in range(200)))
        for i in range(5)
    ) + frame(CONTINUATION, END_HEADERS, 1, b"")
    # The compressed block passes max(4 x cap, 16384) before END_HEADERS.
    s["continuation-flood"] = b"\xf9\xff\x00" + OPEN + frame(HEADERS, 0, 1, S200) + b"".join(
        frame(CONTINUATION, 0, 1, b"\x00" * 8200) for _ in range(2)
    )
    s["frame-too-large"] = OPEN + frame(DATA, 0, 3, b"", length=16385)
    s["frame-max-size-16384"] = OPEN + frame(DATA, 0, 3, b"d" * 16384) + headers(S200)
    # --- HPACK --------------------------------------------------------------------------
    s["hpack-bad-index-70"] = OPEN + headers(S200 + idx(70))
    s["hpack-index-0"] = OPEN + headers(b"\x80")
    s["hpack-integer-overflow"] = OPEN + headers(b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f")
    s["hpack-string-cut-short"] = OPEN + headers(S200 + b"\x00\x05ab")
    s["hpack-huffman-bad-padding"] = OPEN + headers(S200 + b"\x00\x81\x00\x81\xff")
    s["hpack-huffman-eos"] = OPEN + headers(S200 + b"\x00\x84\xff\xff\xff\xff\x81\x00")
    s["hpack-size-update-4096-then-200"] = OPEN + headers(size_update(4096) + S200)
    s["hpack-size-update-0-entry-does-not-stay"] = OPEN + headers(
        size_update(0) + S200 + inc("x-a", "1") + idx(62)
    )
    s["hpack-size-update-too-large"] = OPEN + headers(size_update(4097) + S200)
    s["hpack-size-update-at-end"] = OPEN + headers(S200 + size_update(100))
    s["hpack-two-size-updates"] = OPEN + headers(size_update(0) + size_update(4096) + S200)
    s["hpack-dynamic-table-across-blocks"] = (
        OPEN
        + headers(status(103) + inc("link", "</a.css>; rel=preload"))
        + headers(S200 + idx(62) + inc("x-trace", "abc") + idx(62) + idx(63))
    )
    s["hpack-dynamic-table-from-another-stream"] = (
        OPEN
        + headers(S200 + inc("x-shared", "from stream 3"), stream=3)
        + headers(S200 + idx(62))
    )
    # Entries of 1036 bytes: the 4096-byte table keeps the last three.
    evicting = S200 + b"".join(inc("x-e%d" % i, "e" * 1000) for i in range(6))
    s["hpack-eviction-kept-entries"] = OPEN + headers(evicting + idx(62) + idx(64))
    s["hpack-eviction-evicted-entry"] = OPEN + headers(evicting + idx(65))
    s["hpack-never-indexed"] = OPEN + headers(
        S200 + b"\x10" + string("set-cookie") + string("secret=1") + integer(SET_COOKIE, 4, 0x10) + string("s=2")
    )
    # --- malformed heads ------------------------------------------------------------------
    s["malformed-no-status"] = OPEN + headers(lit_name(SERVER, "x"))
    s["malformed-status-twice"] = OPEN + headers(S200 + S404)
    s["malformed-status-after-field"] = OPEN + headers(lit_name(SERVER, "x") + S200)
    s["malformed-status-values"] = OPEN + headers(lit(":status", "20"))
    s["malformed-status-999"] = OPEN + headers(lit(":status", "999"))
    s["malformed-status-099"] = OPEN + headers(lit(":status", "099"))
    s["malformed-status-text"] = OPEN + headers(lit(":status", "OK\x1b[2J"))
    s["malformed-request-pseudo-header"] = OPEN + headers(S200 + idx(4))
    s["malformed-unknown-pseudo-header"] = OPEN + headers(lit(":\x07bell", "1") + S200)
    s["malformed-upper-case-name"] = OPEN + headers(S200 + lit("Server", "x"))
    s["malformed-name-control-bytes"] = OPEN + headers(S200 + lit("x-\x1b[31m\x9b\xff", "v"))
    s["malformed-name-long"] = OPEN + headers(S200 + lit("X" * 100, "v"))
    s["malformed-empty-name"] = OPEN + headers(S200 + lit("", "v"))
    s["malformed-name-with-colon"] = OPEN + headers(S200 + lit("a:b", "v"))
    s["malformed-value-nul"] = OPEN + headers(S200 + lit("x", "a\x00b"))
    s["malformed-value-crlf"] = OPEN + headers(S200 + lit("x", "a\r\nset-cookie: evil"))
    s["value-escape-bytes-kept"] = OPEN + headers(S200 + lit("x-term", "\x1b]0;title\x07\x9b\xc2\x85\xff"))
    s["value-whitespace-edges"] = OPEN + headers(S200 + lit("x-sp", " \tpadded\t ") + lit("x-empty", ""))
    # --- not HTTP/2 -----------------------------------------------------------------------
    s["http1-response"] = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\r\n<html>"
    s["http1-response-bare-lf"] = b"HTTP/1.0 200 OK\nServer: x\n\n"
    s["http1-long-status-line"] = b"HTTP/1.1 200 " + b"O" * 200 + b"\r\n\r\n"
    s["http1-control-bytes"] = b"HTTP/1.1 200 \x1b[2J\x00\x9b\xff\r\n\r\n"
    s["http1-cut-http-slash"] = b"HTTP/"
    s["http1-cut-htt"] = b"HTT"
    s["http1-after-settings"] = OPEN + b"HTTP/1.1 200 OK\r\n\r\n"
    s["http2-preface-echoed"] = PREFACE + OPEN
    s["tls-alert-protocol-version"] = b"\x15\x03\x03\x00\x02\x02\x46"
    s["tls-alert-handshake-failure"] = b"\x15\x03\x01\x00\x02\x02\x28"
    s["tls-alert-then-close-notify"] = b"\x15\x03\x03\x00\x02\x02\x46\x15\x03\x03\x00\x02\x01\x00"
    s["tls-server-hello-start"] = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + bytes(range(32))
    s["ssh-banner"] = b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"
    s["nul-bytes"] = b"\x00" * 16
    # --- the first frame ------------------------------------------------------------------
    s["first-frame-headers"] = headers(S200)
    s["first-frame-settings-ack"] = SETTINGS_ACK + OPEN
    s["first-frame-goaway"] = goaway(0, 0x1, b"bye")
    s["settings-bad-length"] = frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00")
    s["settings-on-stream-1"] = frame(SETTINGS, 0, 1)
    s["settings-enable-push-2"] = settings((0x2, 2))
    s["settings-window-too-large"] = settings((0x4, 0x80000000))
    s["settings-max-frame-too-small"] = settings((0x5, 16383))
    s["settings-max-frame-too-large"] = settings((0x5, 0x1000000))
    s["settings-ack-with-payload"] = OPEN + frame(SETTINGS, ACK, 0, b"\x00\x01\x00\x00\x10\x00")
    s["settings-reserved-bit-stream"] = frame(SETTINGS, 0, 0x80000000) + headers(S200)
    # --- truncated ------------------------------------------------------------------------
    s["empty"] = b""
    s["truncated-frame-header"] = OPEN[:5]
    s["truncated-settings-payload"] = OPEN[:14]
    s["truncated-headers-header"] = OPEN + headers(NGINX_HEAD)[:7]
    s["truncated-headers-payload"] = OPEN + headers(NGINX_HEAD)[:40]
    s["truncated-continuation"] = OPEN + frame(HEADERS, 0, 1, S200) + frame(CONTINUATION, END_HEADERS, 1, b"\x82")[:9]
    # --- other chunkings ------------------------------------------------------------------
    full = OPEN + SETTINGS_ACK + headers(NGINX_HEAD) + BODY
    s["split-bytewise-settings-headers"] = b"\xf0" + full
    s["split-9-byte-reads"] = b"\xf1\x09" + full
    s["split-3-lens-early-hints"] = b"\xf3\x04\x0b\x00" + s["early-hints-103-then-200"]
    s["split-bytewise-http1"] = b"\xf0" + s["http1-response"]
    s["split-bytewise-continuation"] = b"\xf0" + s["headers-continuation"]
    return s


# ------------------------------------------------------------------------------------------
# Captures
# ------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=5.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def request(port, path="/", stream=1, extra=b""):
    """What headprobe sends: the preface, SETTINGS (ENABLE_PUSH 0, MAX_HEADER_LIST_SIZE
    65536) and HEADERS with END_STREAM."""
    block = idx(2) + idx(6) + lit_name(1, "127.0.0.1:%d" % port) + lit_name(4, path)
    block += lit_name(58, "headprobe") + lit_name(19, "*/*")
    return (
        PREFACE
        + settings((0x2, 0), (0x6, 65536))
        + frame(HEADERS, END_STREAM | END_HEADERS, stream, block)
        + extra
    )


def converse(port, data, quiet=0.4, total=3.0):
    """Sends `data`, then reads until the peer closes or is quiet for `quiet` seconds."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        s.settimeout(quiet)
        end = time.time() + total
        while time.time() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def run_server(argv, port, docroot):
    proc = subprocess.Popen(argv, cwd=docroot, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        proc.kill()
        proc.wait()
        return None
    return proc


def captures():
    got = {}
    docroot = tempfile.mkdtemp(prefix="h2seeds-")
    try:
        with open(os.path.join(docroot, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><title>h2</title><p>hello\n")
        if shutil.which("nghttpd"):
            ping = frame(PING, 0, 0, b"pingpong")
            bad_stream = frame(HEADERS, END_STREAM | END_HEADERS, 2, idx(2))
            runs = [
                ("nghttpd-200-index", [], "/", b""),
                ("nghttpd-404", [], "/missing", b""),
                ("nghttpd-padding-255", ["--padding=255"], "/", b""),
                ("nghttpd-encoder-table-0", ["--encoder-header-table-size=0"], "/", b""),
                ("nghttpd-window-bits", ["--window-bits=10", "--connection-window-bits=20"], "/", b""),
                ("nghttpd-trailer", ["--trailer=x-trailer: done"], "/", b""),
                ("nghttpd-max-streams-0", ["--max-concurrent-streams=0"], "/", b""),
                ("nghttpd-ping-ack", [], "/", ping),
                ("nghttpd-goaway-even-stream", [], None, bad_stream),
            ]
            for name, opts, path, extra in runs:
                port = free_port()
                argv = ["nghttpd", "--no-tls", "--address=127.0.0.1", "-d", docroot] + opts + [str(port)]
                proc = run_server(argv, port, docroot)
                if proc is None:
                    print("skipped %s: nghttpd did not listen" % name, file=sys.stderr)
                    continue
                try:
                    if path is None:
                        data = PREFACE + settings((0x2, 0)) + extra
                    else:
                        data = request(port, path, extra=extra)
                    got[name] = converse(port, data)
                finally:
                    proc.terminate()
                    proc.wait()
        else:
            print("skipped nghttpd captures: no nghttpd", file=sys.stderr)

        # An HTTP/1 server that receives the HTTP/2 preface.
        port = free_port()
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        proc = run_server(argv, port, docroot)
        if proc is not None:
            try:
                got["http1-server-python-505-without-status-line"] = converse(port, request(port))
            finally:
                proc.terminate()
                proc.wait()

        # A TLS server that receives the cleartext preface.
        if shutil.which("openssl"):
            key, cert = os.path.join(docroot, "k.pem"), os.path.join(docroot, "c.pem")
            made = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            port = free_port()
            argv = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-key", key,
                    "-cert", cert, "-alpn", "h2", "-quiet"]
            proc = run_server(argv, port, docroot) if made.returncode == 0 else None
            if proc is not None:
                try:
                    got["tls-server-openssl-answers-preface"] = converse(port, request(port))
                finally:
                    proc.terminate()
                    proc.wait()
    finally:
        shutil.rmtree(docroot, ignore_errors=True)
    return got


def main():
    os.makedirs(OUT, exist_ok=True)
    all_seeds = seeds()
    if "--capture" in sys.argv[1:]:
        for name, data in captures().items():
            if data:
                all_seeds[name] = data
            else:
                print("skipped %s: nothing received" % name, file=sys.stderr)
    for name, data in sorted(all_seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(all_seeds), OUT))


if __name__ == "__main__":
    main()
