"""`fixgw` command line: serve the venue (more subcommands join as features land)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
from pathlib import Path

from engine.history import SnapshotCorrupt
from engine.journal import JournalCorrupt
from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.log_format import configure_logging
from session_store import StoreCorrupt

EXIT_CONFIG = 2
EXIT_FATAL = 3  # stopped because what it decided could not be stored
# Messages data and index, seqnums, inbound data and index, and the message log.
FILES_PER_SESSION = 6


def _raise_open_file_limit() -> None:
    """Every session keeps several files open, and every client a socket: take the
    hard limit on open files, not the often small soft one (1024 on many systems)."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _install_event_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(settings: GatewaySettings) -> int:
    from fix_gateway.server import Gateway

    gateway = Gateway(settings)
    stop = asyncio.Event()
    gateway.on_fatal = stop.set  # a failed write-ahead stops the venue
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: write the engine's canonical state to <data_dir>/engine/state.json.
    loop.add_signal_handler(signal.SIGUSR1, gateway.dump_engine)
    await gateway.start()
    print(f"fixgw listening on {settings.listen.host}:{gateway.port}", flush=True)
    if gateway.tls_port is not None:
        print(f"fixgw listening (TLS) on {settings.tls.host or settings.listen.host}:"
              f"{gateway.tls_port}", flush=True)
    if gateway.metrics is not None and gateway.metrics.server.port is not None:
        print(f"fixgw metrics on http://{settings.metrics.host}:{gateway.metrics.server.port}"
              "/metrics", flush=True)
    await stop.wait()
    await gateway.stop()
    if gateway.fatal_reason is not None:
        print(f"fixgw: stopped: {gateway.fatal_reason}", file=sys.stderr)
        return EXIT_FATAL
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config).with_data_dir(args.data_dir)
        if args.port is not None:
            settings = settings.model_copy(
                update={"listen": settings.listen.model_copy(update={"port": args.port})})
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        configure_logging(settings)
    except OSError as exc:
        print(f"fixgw: cannot open logging.file: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _raise_open_file_limit()
    _install_event_loop()
    try:
        return asyncio.run(_serve(settings))
    except (OSError, StoreCorrupt, JournalCorrupt, SnapshotCorrupt) as exc:  # port in use,
        print(f"fixgw: cannot start: {exc}", file=sys.stderr)  # unwritable, damaged
        if isinstance(exc, SnapshotCorrupt):
            print("fixgw: restore the engine snapshot from a backup, or move it away: the "
                  "next start then replays the archived journals (engine/archive/), the "
                  "whole history", file=sys.stderr)
        if isinstance(exc, JournalCorrupt):
            print("fixgw: the engine journal is damaged before its end (a crash only ever "
                  "tears the last record, which is cut off at start): restore it from a "
                  "backup or a replica (it was left as it is)", file=sys.stderr)
        if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
            print(f"fixgw: {len(settings.sessions)} sessions keep about "
                  f"{FILES_PER_SESSION * len(settings.sessions)} files open, besides one socket "
                  "per client: raise the open-file limit (ulimit -n, or LimitNOFILE= for "
                  "systemd)", file=sys.stderr)
        return 1
    except ConfigError as exc:  # e.g. a TLS certificate that does not load
        print(f"fixgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(settings.model_dump_json(indent=2, by_alias=True))
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from fix_gateway.auth import hash_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("fixgw: passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("fixgw: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    """`fixgw client`: log on, run order-entry commands, print what arrives, log out."""
    from fix_gateway.client import ClientOptions, run_client

    options = ClientOptions(
        host=args.host, port=args.port, sender=args.sender, target=args.target,
        heartbeat=args.heartbeat, reset=args.reset, username=args.username,
        password=args.password, output=args.output, timeout=args.timeout,
        verbose=args.verbose,
    )
    stdin = sys.stdin  # piped commands, or interactive when none were given
    if stdin is not None and stdin.isatty() and args.commands:
        stdin = None
    try:
        return run_client(options, args.commands, stdin)
    except KeyboardInterrupt:
        return 130


def cmd_surveil(args: argparse.Namespace) -> int:
    from surveillance.batch import main as surveil

    return surveil(args.config, args.data_dir, args.backend, args.overrides)


def _add_client_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from fix_gateway.client import USAGE

    client = sub.add_parser(
        "client", help="a scriptable FIX client: send orders, print what the venue answers",
        description="Log on to a FIX venue, run order-entry commands (arguments first, then"
        " stdin lines), print every message received one line each, log out.",
        epilog=USAGE + "\nExit status: 0 clean logout, 1 logon failed, 2 a command could not"
        " be parsed, 3 the connection dropped or the venue logged us out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    client.add_argument("--host", default="127.0.0.1")
    client.add_argument("--port", type=int, default=9878)
    client.add_argument("--sender", default="CLIENT1", help="our SenderCompID (the client's id)")
    client.add_argument("--target", default="FIXGW", help="TargetCompID (the venue's id)")
    client.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt, seconds")
    client.add_argument("--reset", action="store_true",
                        help="ResetSeqNumFlag(141)=Y on Logon: both sides restart at 1")
    client.add_argument("--username")
    client.add_argument("--password")
    fmt = client.add_mutually_exclusive_group()
    fmt.add_argument("--raw", dest="output", action="store_const", const="raw",
                     help="print received messages as raw FIX, | for SOH")
    fmt.add_argument("--json", dest="output", action="store_const", const="json",
                     help="print one JSON object per received message")
    client.set_defaults(output="text")
    client.add_argument("--timeout", type=float, default=2.0,
                        help="seconds to keep printing after the last command (default 2)")
    client.add_argument("-v", "--verbose", action="store_true",
                        help="also print what is sent (raw, on stderr)")
    client.add_argument("commands", nargs="*", metavar="COMMAND",
                        help='one command per argument, e.g. "buy 100 ACME @ 101.25"')
    client.set_defaults(func=cmd_client)


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

    _add_client_parser(sub)
    from drop_copy.cli import add_dropcopy_parser

    add_dropcopy_parser(sub)

    hash_pw = sub.add_parser(
        "hash-password", help="print the salted hash of a password, for PasswordHash",
        description="Read a password (prompted twice on a terminal, else the first line of"
        " stdin) and print its scrypt hash for a session's PasswordHash setting.",
    )
    hash_pw.set_defaults(func=cmd_hash_password)
    from fix_gateway.replay.commands import add_replay_parser

    add_replay_parser(sub)

    surveil = sub.add_parser(
        "surveil", help="run the surveillance detectors over the stored engine journal",
        description="Replay <data_dir>/engine/journal.dat through a fresh engine, run the"
        " surveillance detectors, print the alerts as JSON lines.")
    surveil.add_argument("--config", type=Path, help="TOML configuration file")
    surveil.add_argument("--data-dir", type=Path, help="data directory (overrides the config)")
    surveil.add_argument("--backend", choices=("mlx", "numpy"))
    surveil.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="a surveillance threshold, e.g."
                         " spoofing.qty_ratio=3 or message_burst.max_per_second=100")
    surveil.set_defaults(func=cmd_surveil)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
