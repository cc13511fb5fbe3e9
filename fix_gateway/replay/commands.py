"""`fixgw replay list | show | redrive | scrub`: argument parsing and output.

Exit status: 0 done (redrive: identical reports), 1 redrive found a
difference, 2 bad arguments, configuration or session name, 3 redrive could
not reach the gateway or lost it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.dictionary import Dictionary
from fix_gateway.replay.compare import describe
from fix_gateway.replay.redrive import RedriveError, redrive
from fix_gateway.replay.scrub import scrub
from fix_gateway.replay.store_reader import (
    SessionNotFound,
    StoredSession,
    find_session,
    load_session,
    session_directories,
)
from fix_gateway.replay.viewer import (
    FilterError,
    MessageFilter,
    Viewer,
    parse_msg_types,
    parse_time,
)
from fix_gateway.utc_time import format_timestamp

EXIT_DIFFERENT = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class _Failed(Exception):
    """Print the message on stderr and exit with `status`."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def _settings(args: argparse.Namespace) -> GatewaySettings:
    try:
        return load_settings(args.config)
    except ConfigError as exc:
        raise _Failed(str(exc)) from None


def _context(args: argparse.Namespace) -> tuple[Path, Dictionary]:
    """The data directory and dictionary: from --config (and FIXGW_*), --data-dir wins."""
    settings = _settings(args)
    data_dir = args.data_dir if args.data_dir is not None else settings.store.data_dir
    return data_dir, Dictionary.load(settings.server.dictionary)


def _session(args: argparse.Namespace, data_dir: Path) -> StoredSession:
    try:
        return find_session(data_dir, args.session)
    except SessionNotFound as exc:
        raise _Failed(str(exc)) from None


def _when(value: float | None) -> str:
    return format_timestamp(value).decode() if value is not None else "-"


def cmd_list(args: argparse.Namespace) -> int:
    data_dir, _ = _context(args)
    dirs = session_directories(data_dir)
    if not dirs:
        print(f"no sessions in {data_dir / 'sessions'}", file=sys.stderr)
        return 0
    rows = [("SESSION", "OURS", "THEIRS", "NEXT_OUT", "NEXT_IN", "OUT_MSGS", "IN_MSGS",
             "FIRST", "LAST")]
    for directory in dirs:
        s = load_session(directory)
        times = [m.time for m in s.timeline() if m.time is not None]
        ours, theirs = s.comp_ids
        rows.append((s.name, ours, theirs, str(s.next_sender_seq), str(s.next_target_seq),
                     str(len(s.outbound)), str(len(s.inbound)),
                     _when(min(times) if times else None), _when(max(times) if times else None)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    data_dir, dictionary = _context(args)
    session = _session(args, data_dir)
    try:
        filt = MessageFilter(
            from_seq=args.from_seq, to_seq=args.to_seq,
            since=parse_time(args.since) if args.since else None,
            until=parse_time(args.until) if args.until else None,
            msg_types=parse_msg_types(args.msg_type, dictionary) if args.msg_type else None,
            cl_ord_id=args.clordid.encode() if args.clordid else None,
            direction=args.direction.upper() if args.direction else None,
        )
    except FilterError as exc:
        raise _Failed(str(exc)) from None
    if not session.inbound:
        print(f"fixgw replay: {session.name}: no inbound messages recorded"
              " (store.record_inbound off?); showing outbound only", file=sys.stderr)
    viewer = Viewer(dictionary)
    first = True
    for m in filt.apply(session.timeline()):
        if args.json:
            print(viewer.json_line(m))
        else:
            if not first:
                print()
            print(viewer.text(m))
        first = False
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    data_dir, dictionary = _context(args)
    session = _session(args, data_dir)
    if not session.inbound:
        raise _Failed(f"{session.name}: no inbound messages recorded (store.record_inbound"
                      " was off?): nothing to re-drive")
    try:
        result = redrive(session, args.host, args.port, dictionary, args.timeout)
    except (RedriveError, OSError) as exc:
        raise _Failed(f"redrive: {exc}", EXIT_UNREACHABLE) from None
    if result.difference is None:
        print(f"identical {len(result.expected)} reports"
              f" ({result.sent} application messages sent)")
        return 0
    print(f"different: {describe(result.difference, dictionary)}")
    print(f"({result.sent} application messages sent, {len(result.expected)} reports stored,"
          f" {len(result.received)} received)")
    return EXIT_DIFFERENT


def cmd_scrub(args: argparse.Namespace) -> int:
    settings = _settings(args)
    data_dir = args.data_dir if args.data_dir is not None else settings.store.data_dir
    log_dir = settings.logging.messages_dir or data_dir / "logs"
    stores, logs = scrub(data_dir, log_dir)
    print(f"masked {stores.messages} stored messages in {stores.files} session stores"
          f" ({data_dir / 'sessions'}), {logs.messages} lines in {logs.files} message logs"
          f" ({log_dir})")
    return 0


Command = Callable[[argparse.Namespace], int]


def _run(func: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except _Failed as exc:
            print(f"fixgw replay: {exc}", file=sys.stderr)
            return exc.status

    return run


def add_replay_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser(
        "replay", help="list, show and re-drive stored sessions",
        description="Read the session stores in a data directory: list the sessions, print a"
        " session's messages decoded, or re-drive its inbound messages against a running"
        " gateway and compare the reports.",
    )
    commands = replay.add_subparsers(dest="replay_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="TOML configuration (data_dir, dictionary)")
        p.add_argument("--data-dir", type=Path, help="data directory (overrides the config)")

    listing = commands.add_parser("list", help="the sessions in the store")
    common(listing)
    listing.set_defaults(func=_run(cmd_list))

    show = commands.add_parser("show", help="a session's messages, in order, decoded")
    show.add_argument("session", help="FIXGW-CLIENT1 (as `list` shows) or the client's CompID")
    common(show)
    show.add_argument("--from-seq", type=int, metavar="N", help="MsgSeqNum(34) >= N")
    show.add_argument("--to-seq", type=int, metavar="N", help="MsgSeqNum(34) <= N")
    show.add_argument("--since", metavar="TIME",
                      help="SendingTime(52) >= TIME (20240501-12:00:00 or 2024-05-01T12:00:00)")
    show.add_argument("--until", metavar="TIME", help="SendingTime(52) <= TIME")
    show.add_argument("--msg-type", action="append", metavar="TYPE",
                      help="MsgType code or name, e.g. D or NewOrderSingle (repeatable, or a"
                      " comma list)")
    show.add_argument("--clordid", metavar="ID", help="ClOrdID(11) or OrigClOrdID(41) is ID")
    show.add_argument("--direction", choices=("in", "out"), help="only inbound or outbound")
    show.add_argument("--json", action="store_true",
                      help="JSON lines: one object per message (fields by name, raw)")
    show.set_defaults(func=_run(cmd_show))

    drive = commands.add_parser(
        "redrive", help="send a session's inbound messages to a gateway, compare the reports",
        description="Log on to a running gateway (a fresh engine and data directory) as the"
        " stored session's client, send its inbound application messages in order, and compare"
        " the ExecutionReports, OrderCancelRejects, BusinessMessageRejects and"
        " OrderMassCancelReports received with the stored ones, ignoring SendingTime,"
        " TransactTime, MsgSeqNum, BodyLength and CheckSum. Exit 0 identical, 1 different,"
        " 2 bad arguments, 3 gateway unreachable.",
    )
    drive.add_argument("session", help="FIXGW-CLIENT1 (as `list` shows) or the client's CompID")
    drive.add_argument("--host", default="127.0.0.1")
    drive.add_argument("--port", type=int, required=True)
    common(drive)
    drive.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the last reports (default 30)")
    drive.set_defaults(func=_run(cmd_redrive))

    scrubber = commands.add_parser(
        "scrub", help="mask passwords in stores and message logs written before masking",
        description="Rewrite the inbound session stores and the message logs (rotated ones"
        " too) so that Password(554), NewPassword(925) and RawData(96) read ***, re-framed"
        " (BodyLength, CheckSum) as the gateway now writes them. Stop the gateway first.",
    )
    common(scrubber)
    scrubber.set_defaults(func=_run(cmd_scrub))
