"""An HTTP/3 peer for headprobe's tests (tests/suite/http3.rs), on aioquic.

Usage: h3_server.py CERT KEY

Listens on 127.0.0.1 on a port of the system's choosing and prints `ready PORT` once
it does. For each request it prints the request's field section as one JSON line
(a list of [name, value] pairs, in the order received), then answers as the path says:

  /ok        200 with fields in a chosen order (a repeated name among them)
  /many      404 with 60 fields
  /moved     301 to /ok
  /big       200 with one 3000-byte field
  /interim   103, then 200
  /reset     the request stream reset with H3_REQUEST_REJECTED
  /close     CONNECTION_CLOSE with H3_INTERNAL_ERROR and a reason phrase
  /silent    nothing at all
  /data      DATA before any HEADERS (malformed)

aioquic encodes the heads with pylsqpack (ls-qpack), so the heads headprobe reads were
encoded by a QPACK implementation other than its own, and the requests it sends are
decoded by one.
"""

import asyncio
import json
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated


def fields(pairs):
    return [(n.encode(), v.encode()) for n, v in pairs]


class Peer(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = None

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                self.answer(ev)

    def answer(self, ev):
        pairs = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in ev.headers]
        print(json.dumps(pairs), flush=True)
        path = dict((n, v) for n, v in pairs).get(":path", "/")
        path = path.split("?")[0]
        sid = ev.stream_id
        h3 = self.h3
        if path == "/ok":
            h3.send_headers(
                sid,
                fields(
                    [
                        (":status", "200"),
                        ("server", "aioquic-test"),
                        ("x-a", "1"),
                        ("set-cookie", "a=1"),
                        ("x-a", "2"),
                        ("content-type", "text/plain"),
                    ]
                ),
            )
            h3.send_data(sid, b"body\n", end_stream=True)
        elif path == "/many":
            head = [(":status", "404")] + [
                ("x-field-%02d" % i, "value %d" % i) for i in range(60)
            ]
            h3.send_headers(sid, fields(head), end_stream=True)
        elif path == "/moved":
            h3.send_headers(
                sid, fields([(":status", "301"), ("location", "/ok")]), end_stream=True
            )
        elif path == "/big":
            h3.send_headers(
                sid, fields([(":status", "200"), ("x-big", "b" * 3000)]), end_stream=True
            )
        elif path == "/interim":
            h3.send_headers(sid, fields([(":status", "103"), ("link", "</s.css>")]))
            h3.send_headers(sid, fields([(":status", "200")]), end_stream=True)
        elif path == "/reset":
            self._quic.reset_stream(sid, 0x10B)
        elif path == "/close":
            self._quic.close(error_code=0x102, reason_phrase="going away for the test")
        elif path == "/silent":
            return
        elif path == "/data":
            # Raw frame bytes: aioquic itself refuses to send DATA first.
            self._quic.send_stream_data(sid, b"\x00\x03abc", end_stream=True)
        else:
            h3.send_headers(sid, fields([(":status", "404")]), end_stream=True)
        self.transmit()


async def main(cert, key):
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=Peer)
    port = server._transport.get_extra_info("sockname")[1]
    print("ready %d" % port, flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
