"""A FIX drop-copy consumer for the load benchmark: logs on, reads, counts copies.

    python bench/dropcopy_consumer.py HOST PORT SENDER TARGET

Prints "ready" once logged on and, on SIGTERM, "copies N" (messages with
CopyMsgIndicator 797=Y received), then exits. It answers TestRequests so the
venue never logs it out, and otherwise only reads.
"""

from __future__ import annotations

import signal
import socket
import sys
import time

SOH = b"\x01"


def frame(body: bytes) -> bytes:
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def stamp() -> bytes:
    return time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime()).encode()


def main() -> int:
    host, port, sender, target = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sock = socket.create_connection((host, port))
    seq = 1

    def send(msg_type: bytes, fields: bytes = b"") -> None:
        nonlocal seq
        sock.sendall(frame(b"35=%b\x0134=%d\x0149=%b\x0152=%b\x0156=%b\x01%b" % (
            msg_type, seq, sender.encode(), stamp(), target.encode(), fields)))
        seq += 1

    send(b"A", b"98=0\x01108=30\x01141=Y\x01")
    copies = 0
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    buf = b""
    sock.settimeout(0.2)
    while not stopping:
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except InterruptedError:
            break
        if not data:
            break
        buf += data
        # Only whole messages: up to the SOH that ends the last CheckSum field.
        cut = buf.rfind(b"\x0110=")
        end = buf.find(SOH, cut + 1) + 1 if cut >= 0 else 0
        if end <= 0:
            continue
        whole, buf = buf[:end], buf[end:]
        copies += whole.count(b"\x01797=Y\x01")
        if b"\x0135=1\x01" in whole:  # TestRequest: answer with a Heartbeat
            test_id = whole.split(b"\x01112=")[1].split(SOH)[0]
            send(b"0", b"112=%b\x01" % test_id)
    print(f"copies {copies}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
