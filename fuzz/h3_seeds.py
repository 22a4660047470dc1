#!/usr/bin/env python3
"""Writes the seed corpus of the `h3_reader` fuzz target (fuzz/corpus/h3_reader/).

Each seed is what a server sends on an HTTP/3 request stream: frames (RFC 9114) whose
HEADERS carry field sections encoded by ls-qpack (pylsqpack, which aioquic installs)
with a dynamic table capacity of 0, as headprobe asks, so Huffman strings, static
references and literals are ls-qpack's choices, not ours. A few are written by hand
(dynamic references, bad frames). A seed that starts with a byte of 0xf0 or more
carries the control bytes of `check_h3_reader` (chunk lengths, a small cap).

    fuzz/h3_seeds.py
"""

import os

import pylsqpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h3_reader")


def varint(v):
    if v < 1 << 6:
        return bytes([v])
    if v < 1 << 14:
        return (v | 0x4000).to_bytes(2, "big")
    if v < 1 << 30:
        return (v | 0x80000000).to_bytes(4, "big")
    return (v | 0xC000000000000000).to_bytes(8, "big")


def frame(kind, payload):
    return varint(kind) + varint(len(payload)) + payload


def section(fields):
    enc = pylsqpack.Encoder()
    enc.apply_settings(max_table_capacity=0, blocked_streams=0)
    _, data = enc.encode(0, [(n.encode(), v.encode()) for n, v in fields])
    return data


def headers(fields):
    return frame(0x1, section(fields))


SEEDS = {
    "ok-200": headers([(":status", "200"), ("server", "nginx"), ("content-type", "text/html; charset=utf-8")]),
    "cloudflare-like-301": headers(
        [
            (":status", "301"),
            ("date", "Tue, 08 Dec 2026 01:00:00 GMT"),
            ("location", "https://www.example.com/"),
            ("cache-control", "max-age=3600"),
            ("expires", "Tue, 08 Dec 2026 02:00:00 GMT"),
            ("server", "cloudflare"),
            ("cf-ray", "8f1e2d3c4b5a6978-AMS"),
            ("alt-svc", 'h3=":443"; ma=86400'),
        ]
    ),
    "interim-103-then-200": headers([(":status", "103"), ("link", "</a.css>; rel=preload")])
    + headers([(":status", "200")]),
    "grease-frame-first": frame(0x21, b"\x00" * 7) + headers([(":status", "204")]),
    "data-first": frame(0x0, b"body"),
    "settings-on-request-stream": frame(0x4, b""),
    "h2-frame-type": frame(0x6, b"\x00" * 8),
    "head-then-body": headers([(":status", "200")]) + frame(0x0, b"hello"),
    "no-status": headers([("server", "x")]),
    "upper-case-name": headers([(":status", "200"), ("Server", "x")]),
    "status-101": headers([(":status", "101")]),
    "many-fields": headers([(":status", "404")] + [("x-field-%02d" % i, "value %d" % i) for i in range(60)]),
    # Hand-made sections: a Required Insert Count above 0, a dynamic index, a
    # post-base reference, a static index past the table, a truncated string.
    "dynamic-insert-count": frame(0x1, b"\x01\x00\xd9"),
    "dynamic-index": frame(0x1, b"\x00\x00\x80"),
    "post-base": frame(0x1, b"\x00\x00\x10"),
    "static-past-the-table": frame(0x1, b"\x00\x00\xff\x24"),
    "truncated-string": frame(0x1, b"\x00\x00\x5f\x4d\x05ab"),
    "huge-headers-frame": varint(0x1) + varint(1 << 20),
    # Byte by byte (control 0xf0: no lengths), and a cap of 16 + 8*4 = 48 bytes.
    "byte-by-byte": b"\xf0" + headers([(":status", "200"), ("x-a", "1")]),
    "cap-48-over": b"\xf8\x04" + headers([(":status", "200"), ("x-long", "v" * 20)]),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
