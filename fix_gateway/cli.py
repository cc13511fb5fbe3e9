"""`fixgw` command line: serve the venue (more subcommands join as features land)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from session_store import StoreCorrupt

EXIT_CONFIG = 2


def _install_event_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(settings: GatewaySettings) -> int:
    from fix_gateway.server import Gateway

    gateway = Gateway(settings)
    await gateway.start()
    print(f"fixgw listening on {settings.listen.host}:{gateway.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: write the engine's canonical state to <data_dir>/engine/state.json.
    loop.add_signal_handler(signal.SIGUSR1, gateway.dump_engine)
    await stop.wait()
    await gateway.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        if args.port is not None or args.data_dir is not None:
            overrides = {}
            if args.port is not None:
                overrides["listen"] = settings.listen.model_copy(update={"port": args.port})
            if args.data_dir is not None:
                overrides["store"] = settings.store.model_copy(update={"data_dir": args.data_dir})
            settings = settings.model_copy(update=overrides)
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    _install_event_loop()
    try:
        return asyncio.run(_serve(settings))
    except (OSError, StoreCorrupt) as exc:  # port in use, data dir not writable, bad store
        print(f"fixgw: cannot start: {exc}", file=sys.stderr)
        return 1


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(settings.model_dump_json(indent=2, by_alias=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixgw", description="FIX 4.4 exchange gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--port", type=int, help="listen port (overrides the config)")
    serve.add_argument("--data-dir", type=Path, help="data directory (overrides the config)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a configuration and print it")
    check.add_argument("--config", type=Path)
    check.set_defaults(func=cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
