"""`fixgw dropcopy ...`: replay the stream, follow the MQTT feed, run its parts alone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from drop_copy.record import DropCopyRecord
from fix_gateway.config import ConfigError, GatewaySettings, MqttSettings, load_settings

EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> GatewaySettings | None:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return None
    return settings.with_data_dir(getattr(args, "data_dir", None))


def _broker(text: str) -> tuple[str, int]:
    """--broker HOST[:PORT] (1883 by default); argparse reports a bad one."""
    host, _, port = text.partition(":")
    if not host or not (port or "1883").isdigit() or not 0 < int(port or 1883) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST[:PORT], got {text!r}")
    return host, int(port or 1883)


def _seq(text: str) -> int:
    """A drop-copy sequence number: they start at 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a sequence number from 1 up, got {text!r}")
    return int(text)


def _mqtt(settings: GatewaySettings, args: argparse.Namespace) -> MqttSettings:
    mqtt = settings.drop_copy.mqtt
    if getattr(args, "broker", None):
        host, port = args.broker
        mqtt = mqtt.model_copy(update={"host": host, "port": port})
    return mqtt


def cmd_replay(args: argparse.Namespace) -> int:
    """Print (or publish) stream entries from --from on, one JSON object per line."""
    from drop_copy.mqtt import Publisher, make_client, publish_all
    from drop_copy.stream import StreamReader, stream_directory
    from fix_gateway.dictionary import Dictionary

    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    directory = stream_directory(settings.store.data_dir)
    if not (directory / "messages.idx").exists():
        print(f"fixgw: no drop-copy stream in {directory}", file=sys.stderr)
        return 1
    dictionary = Dictionary.load(settings.server.dictionary)
    with StreamReader(directory) as reader:
        end = reader.head() if args.to is None else min(args.to, reader.head())
        if not args.publish:
            seq = args.from_seq
            while seq <= end:
                entries = reader.read(seq, min(1000, end - seq + 1))
                if not entries:
                    break
                for s, raw in entries:
                    print(DropCopyRecord.from_report(s, raw, dictionary).model_dump_json())
                seq = entries[-1][0] + 1
            return 0
        mqtt = _mqtt(settings, args)
        publisher = Publisher(mqtt, settings.store.data_dir, dictionary)

        async def publish() -> int:
            count = 0
            async with make_client(mqtt, identifier=f"{mqtt.client_id}-replay") as client:
                seq = args.from_seq
                while seq <= end:
                    entries = reader.read(seq, min(500, end - seq + 1))
                    if not entries:
                        break
                    await publish_all(client, publisher.records(entries))
                    count += len(entries)
                    seq = entries[-1][0] + 1
            return count

        count = asyncio.run(publish())
        print(f"published {count} copies ({args.from_seq}..{end})", file=sys.stderr)
        return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Follow the MQTT feed, in sequence order, filling gaps by replay requests."""
    from drop_copy.subscriber import follow

    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    mqtt = _mqtt(settings, args)

    def show(record: DropCopyRecord) -> None:
        print(record.model_dump_json() if args.json else _line(record), flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.count:
            seen = 0

            def show_some(record: DropCopyRecord) -> None:
                nonlocal seen
                show(record)
                seen += 1
                if seen >= args.count:
                    stop.set()

            await follow(mqtt, show_some, start=args.from_seq, stop=stop)
        else:
            await follow(mqtt, show, start=args.from_seq, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


_SIDES = {"1": "Buy", "2": "Sell"}


def _line(record: DropCopyRecord) -> str:
    f = record.fields
    parts = [f"#{record.seq}", record.session,
             f"ExecType={f.get('ExecType')}", f"OrdStatus={f.get('OrdStatus')}",
             f"{_SIDES.get(f.get('Side', ''), f.get('Side'))} {f.get('OrderQty')}"
             f" {f.get('Symbol')}",
             f"ClOrdID={f.get('ClOrdID')}", f"ExecID={f.get('ExecID')}"]
    if "LastQty" in f:
        parts.append(f"Last={f['LastQty']}@{f.get('LastPx')}")
    return " ".join(parts)


def cmd_publish(args: argparse.Namespace) -> int:
    """Run the MQTT publisher as its own process (drop_copy.mqtt.in_process = false)."""
    from drop_copy.mqtt import Publisher, start_embedded_broker
    from fix_gateway.dictionary import Dictionary

    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    mqtt = _mqtt(settings, args)
    dictionary = Dictionary.load(settings.server.dictionary)
    publisher = Publisher(mqtt, settings.store.data_dir, dictionary)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        broker = None
        if not mqtt.host:
            broker = await start_embedded_broker(mqtt.embedded_host, mqtt.embedded_port)
        try:
            await publisher.run(stop)
        finally:
            if broker is not None:
                await broker.shutdown()

    _log_to_stderr()
    asyncio.run(run())
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """The embedded MQTT broker alone (for trying the feed without Mosquitto)."""
    from drop_copy.mqtt import start_embedded_broker

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        broker = await start_embedded_broker(args.host, args.port)
        print(f"mqtt broker listening on {args.host}:{args.port}", flush=True)
        await stop.wait()
        await broker.shutdown()

    _log_to_stderr()
    asyncio.run(run())
    return 0


def _log_to_stderr() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def add_dropcopy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dc = sub.add_parser("dropcopy", help="the drop-copy stream and its MQTT feed")
    dsub = dc.add_subparsers(dest="dropcopy_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="TOML configuration file")
        p.add_argument("--data-dir", type=Path, help="data directory (overrides the config)")

    replay = dsub.add_parser("replay", help="print stream entries as JSON lines, or publish them")
    common(replay)
    replay.add_argument("--from", dest="from_seq", type=_seq, default=1, metavar="N")
    replay.add_argument("--to", type=_seq, default=None, metavar="M")
    replay.add_argument("--publish", action="store_true",
                        help="publish to the configured broker instead of printing")
    replay.add_argument("--broker", type=_broker, help="HOST[:PORT], overriding the config")
    replay.set_defaults(func=cmd_replay)

    tail = dsub.add_parser("tail", help="follow the MQTT feed in sequence order")
    common(tail)
    tail.add_argument("--from", dest="from_seq", type=_seq, default=1, metavar="N")
    tail.add_argument("--broker", type=_broker, help="HOST[:PORT], overriding the config")
    tail.add_argument("--json", action="store_true", help="print whole JSON records")
    tail.add_argument("--count", type=int, default=0, help="stop after this many records")
    tail.set_defaults(func=cmd_tail)

    publish = dsub.add_parser("publish", help="run the MQTT publisher as its own process")
    common(publish)
    publish.add_argument("--broker", type=_broker, help="HOST[:PORT], overriding the config")
    publish.set_defaults(func=cmd_publish)

    broker = dsub.add_parser("broker", help="run the embedded MQTT broker alone")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=int, default=1883)
    broker.set_defaults(func=cmd_broker)
