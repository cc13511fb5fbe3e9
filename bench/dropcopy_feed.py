"""MQTT drop-copy feed throughput: how fast the publisher drains the stream.

Fills a drop-copy stream with N ExecutionReports (real ones, rendered by the
engine's report writer for a crossing flow), starts a broker (Mosquitto if
installed, else the embedded amqtt one) and a subscriber, then times the
publisher from the first entry to the broker's acknowledgement of the last
one, and the subscriber until it has received all of them in order.

    .venv/bin/python bench/dropcopy_feed.py [--entries 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drop_copy.mqtt import Publisher  # noqa: E402
from drop_copy.stream import DropCopyStream, stream_directory  # noqa: E402
from fix_gateway.config import MqttSettings  # noqa: E402
from fix_gateway.dictionary import Dictionary  # noqa: E402
from tests.mqtt_broker import Broker  # noqa: E402


def fill(data_dir: Path, n: int) -> None:
    stream = DropCopyStream(stream_directory(data_dir))
    body = (b"37=%d\x0111=C%d\x0117=%d\x01150=F\x0139=1\x011=ACC7\x0155=ACME\x0154=1\x01"
            b"38=100\x0140=2\x0144=101.25\x0159=0\x0132=10\x0131=101.25\x01851=1\x01"
            b"151=90\x0114=10\x016=101.25\x0160=20261121-21:00:00.000\x01")
    for i in range(1, n + 1):
        msg = (b"35=8\x0134=%d\x0149=FIXGW\x0152=20261121-21:00:00.000\x0156=CLIENT%d\x01"
               % (i, i % 3 + 1)) + body % (i, i, i)
        head = b"8=FIX.4.4\x019=%d\x01" % len(msg)
        stream.append(head + msg + b"10=%03d\x01" % (sum(head + msg) % 256))
        if i % 10_000 == 0:
            stream.flush()
    stream.flush()
    stream.close()


SUBSCRIBER = """
import sys, time
import paho.mqtt.client as mqtt
n, port = int(sys.argv[1]), int(sys.argv[2])
got = 0
def on_message(client, userdata, msg):
    global got
    got += 1
    if got == n:
        print(time.time(), flush=True)
        client.disconnect()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
client.on_message = on_message
client.on_connect = lambda c, u, f, rc, p: c.subscribe("fixgw/dropcopy/+/+", qos=1)
client.connect("127.0.0.1", port)
print("ready", flush=True)
client.loop_forever()
"""


async def run(n: int, data_dir: Path, port: int) -> None:
    """Publisher in this process; the subscriber (plain paho) in another."""
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=port)
    publisher = Publisher(settings, data_dir, Dictionary.load())
    sub = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBSCRIBER, str(n), str(port), stdout=asyncio.subprocess.PIPE)
    assert sub.stdout is not None
    assert (await sub.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(0.5)  # subscribed
    stop = asyncio.Event()
    start, cpu = time.time(), time.process_time()
    pub = asyncio.create_task(publisher.run(stop))
    while publisher.acked < n:
        await asyncio.sleep(0.01)
    acked_at = time.time() - start
    cpu_per = (time.process_time() - cpu) / n * 1e6
    last = float((await asyncio.wait_for(sub.stdout.readline(), 120)).strip())
    await sub.wait()
    stop.set()
    await pub
    print(f"published {n:,} copies (QoS 1, all acknowledged) in {acked_at:.2f} s: "
          f"{n / acked_at:,.0f} copies/s, {cpu_per:.0f} us publisher CPU per copy; "
          f"the subscriber (another process) had all of them after {last - start:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fill(work / "data", args.entries)
        broker = Broker(work)
        print(f"broker: {broker.kind}")
        try:
            asyncio.run(run(args.entries, work / "data", broker.port))
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
