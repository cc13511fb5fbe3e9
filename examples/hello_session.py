"""A first FIX session against a running gateway: log on, test request, an order, log out.

    make run                                   # in one terminal
    .venv/bin/python examples/hello_session.py # in another

Prints every message in both directions with | for SOH.
"""

from __future__ import annotations

import argparse
import socket
import time

from fix_gateway.codec import Decoder, Message, encode
from fix_gateway.utc_time import format_timestamp


def show(direction: str, raw: bytes) -> None:
    print(direction, raw.replace(b"\x01", b"|").decode("latin-1"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9878)
    parser.add_argument("--sender", default="CLIENT1", help="our SenderCompID")
    parser.add_argument("--target", default="FIXGW", help="the venue's CompID")
    args = parser.parse_args()

    sock = socket.create_connection((args.host, args.port))
    sock.settimeout(5)
    decoder = Decoder()
    seq = 0

    def send(msg_type: str, *body: tuple[int, str | int | bytes]) -> None:
        nonlocal seq
        seq += 1
        now = format_timestamp(time.time())
        raw = encode([(35, msg_type), (34, seq), (49, args.sender), (52, now),
                      (56, args.target), *body])
        show(">>", raw)
        sock.sendall(raw)

    def receive() -> Message:
        while True:
            items, _ = decoder.feed(sock.recv(65536))
            for item in items:
                if isinstance(item, Message):
                    show("<<", item.raw)
                    return item

    send("A", (98, 0), (108, 30), (141, "Y"))
    receive()
    send("1", (112, "hello"))
    receive()
    send("D", (11, "ORDER-1"), (38, 100), (40, 2), (44, "101.25"), (54, 1), (55, "ACME"),
         (60, format_timestamp(time.time())))
    receive()
    send("5")
    receive()
    sock.close()


if __name__ == "__main__":
    main()
