"""Logon secrets (Password 554, NewPassword 925, RawData 96) never reach the disk or the
replay tool in clear.

A gateway on a loopback port with a credentialed session; a client logs on
with a password and RawData, then sends a message carrying a NewPassword.
Every file under the data directory (session store, inbound store, message
logs) is searched for the secret bytes, and `fixgw replay show` is run as a
subprocess, in text and JSON. Files written before masking existed are
masked by `replay show` on display, and rewritten masked by `replay scrub`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fix_gateway import auth
from fix_gateway.codec import Decoder, Message, checksum, encode, parse_fields
from fix_gateway.message_log import MessageLog
from fix_gateway.redaction import MASK, redacted
from fix_gateway.replay.scrub import scrub_inbound, scrub_message_log
from fix_gateway.server import Gateway
from session_store import FileStore, FsyncPolicy, read_inbound
from tests.gateway_process import REPO
from tests.venue import Client, venue_settings

PASSWORD = "correct horse 4711"
RAW_DATA = "raw-secret=0815"  # holds an '=': data fields are length-delimited
NEW_PASSWORD = "n3w-secret-2323"
SECRETS = (PASSWORD, RAW_DATA, NEW_PASSWORD)
HASH = auth.hash_password(PASSWORD, n=2**10)  # cheap scrypt cost for tests


def replay_show(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fix_gateway.cli", "replay", "show", "CLIENT1",
         "--data-dir", str(data_dir), *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def files_holding(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


async def test_secrets_are_masked_in_stores_logs_and_replay(tmp_path: Path) -> None:
    gw = Gateway(venue_settings(
        tmp_path, [{"TargetCompID": "CLIENT1", "Username": "alice", "PasswordHash": HASH}]))
    await gw.start()
    try:
        client = await Client.logged_on(
            gw.port, "CLIENT1", (95, len(RAW_DATA)), (96, RAW_DATA), (553, "alice"),
            (554, PASSWORD))
        await client.send("0", (925, NEW_PASSWORD))  # a Heartbeat no one should send
        await client.peer.receive()  # rejected (925 is not a Heartbeat field), but stored
        await client.alive()
        await client.close()
    finally:
        await gw.stop(drain_timeout=0.5)
    inbound = [parse_fields(r.raw) for r in
               read_inbound(tmp_path / "sessions" / "FIXGW-CLIENT1")]
    assert len(inbound) == 3 and all(p is not None for p in inbound), "the inbound store"
    assert list((tmp_path / "logs").glob("*.messages.log")), "the message log"
    for secret in SECRETS:
        assert files_holding(tmp_path, secret) == [], secret
    shown = replay_show(tmp_path) + replay_show(tmp_path, "--json")
    for secret in SECRETS:
        assert secret not in shown
    assert "554 Password" in shown and "= ***" in shown  # masked, not left out
    assert '"Username": "alice"' in shown


def test_replay_show_masks_files_written_before_masking(tmp_path: Path) -> None:
    """Existing stores are not rewritten; the reader masks what it shows."""
    directory = tmp_path / "sessions" / "FIXGW-CLIENT1"
    store = FileStore(directory, fsync=FsyncPolicy.NONE, record_inbound=True)
    logon = encode([(35, "A"), (34, 1), (49, "CLIENT1"), (52, "20261121-20:59:52.123"),
                    (56, "FIXGW"), (98, 0), (108, 30), (553, "alice"), (554, PASSWORD)])
    store.append_inbound(logon, time.time())
    store.flush()
    store.close()
    assert files_holding(tmp_path, PASSWORD)  # in clear on disk, as old gateways left it
    shown = replay_show(tmp_path) + replay_show(tmp_path, "--json")
    assert PASSWORD not in shown and "***" in shown
    raw = json.loads(replay_show(tmp_path, "--json").splitlines()[0])["raw"]
    assert raw.endswith(f"554=***\x0110={checksum(raw[:-7].encode('latin-1')):03d}\x01")


@pytest.mark.unit
def test_redacted_copy_is_a_valid_frame_and_others_are_untouched() -> None:
    logon = encode([(35, "A"), (34, 1), (49, "C"), (52, "20261121-20:59:52"), (56, "G"),
                    (98, 0), (108, 30), (95, len(RAW_DATA)), (96, RAW_DATA),
                    (553, "alice"), (554, PASSWORD), (925, NEW_PASSWORD)])
    msg = _decode(logon)
    masked = redacted(msg)
    again = _decode(masked)  # a whole frame: BodyLength and CheckSum recomputed
    assert [(tag, again.get(tag)) for tag in (95, 96, 553, 554, 925)] == [
        (95, b"%d" % len(MASK)), (96, MASK), (553, b"alice"), (554, MASK), (925, MASK)]
    heartbeat = encode([(35, "0"), (34, 2), (49, "C"), (52, "20261121-20:59:52"), (56, "G")])
    assert redacted(_decode(heartbeat)) is heartbeat  # no copy for the common case


def _old_files(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A session store and message logs as gateways before masking wrote them."""
    directory = tmp_path / "sessions" / "FIXGW-CLIENT1"
    logon = encode([(35, "A"), (34, 1), (49, "CLIENT1"), (52, "20261121-20:59:52.123"),
                    (56, "FIXGW"), (98, 0), (108, 30), (95, len(RAW_DATA)), (96, RAW_DATA),
                    (553, "alice"), (554, PASSWORD)])
    heartbeat = encode([(35, "0"), (34, 2), (49, "CLIENT1"), (52, "20261121-20:59:53.000"),
                        (56, "FIXGW")])
    store = FileStore(directory, fsync=FsyncPolicy.NONE, record_inbound=True)
    message_log = MessageLog(tmp_path / "logs" / "FIXGW-CLIENT1.messages.log", 1 << 20, 2)
    for when, raw in ((1.0, logon), (2.0, heartbeat)):
        store.append_inbound(raw, when)
        message_log.inbound(when, raw)
    store.flush()
    store.close()
    message_log.close()
    rotated = tmp_path / "logs" / "FIXGW-CLIENT1.messages.log.1"
    rotated.write_bytes((tmp_path / "logs" / "FIXGW-CLIENT1.messages.log").read_bytes())
    return directory, logon, heartbeat


def test_replay_scrub_masks_old_stores_and_message_logs(tmp_path: Path) -> None:
    directory, _, heartbeat = _old_files(tmp_path)
    assert files_holding(tmp_path, PASSWORD) and files_holding(tmp_path, RAW_DATA)
    log_before = (tmp_path / "logs" / "FIXGW-CLIENT1.messages.log").read_bytes().splitlines()
    out = _scrub(tmp_path)
    assert "masked 1 stored messages in 1 session stores" in out
    assert "2 lines in 2 message logs" in out
    for secret in SECRETS:
        assert files_holding(tmp_path, secret) == [], secret
    records = list(read_inbound(directory))
    assert [r.received for r in records] == [1.0, 2.0] and records[1].raw == heartbeat
    assert [_decode(records[0].raw).get(tag) for tag in (96, 553, 554)] == [MASK, b"alice", MASK]
    log_after = (tmp_path / "logs" / "FIXGW-CLIENT1.messages.log").read_bytes().splitlines()
    assert log_after[1] == log_before[1]  # lines without secrets are left as they were
    stamp, direction, frame = log_after[0].split(b" ", 2)[0], b"IN", log_after[0].split()[-1]
    assert log_after[0] == stamp + b" " + direction + b"  " + frame
    assert _decode(frame.replace(b"|", b"\x01")).get(554) == MASK  # still a valid frame
    reopened = FileStore(directory, fsync=FsyncPolicy.NONE, record_inbound=True)  # recovery agrees
    assert reopened._inbound is not None and reopened._inbound.count == 2
    reopened.close()
    assert "masked 0 stored messages in 0 session stores" in _scrub(tmp_path)  # idempotent


@pytest.mark.unit
def test_a_store_scrub_cut_short_is_finished_by_the_next(tmp_path: Path) -> None:
    directory, _, _ = _old_files(tmp_path)
    dat = directory / "inbound.dat"
    old = dat.read_bytes()
    assert scrub_inbound(directory) == 1
    new = dat.read_bytes()
    dat.write_bytes(old)  # as if stopped between renaming the index and the messages
    (directory / "inbound.dat.scrub").write_bytes(new)
    assert scrub_inbound(directory) == 0
    assert dat.read_bytes() == new and not (directory / "inbound.dat.scrub").exists()


@pytest.mark.unit
def test_a_log_line_whose_password_holds_a_bar_is_masked_whole(tmp_path: Path) -> None:
    """SOH became `|` in the log: `554=pa|ss|10=` no longer parses; the value is masked
    up to the next `|<tag>=`."""
    path = tmp_path / "S.messages.log"
    path.write_bytes(b"2026-11-21T20:59:52.123456Z IN  8=FIX.4.4|9=30|35=A|553=u|554=pa|ss|"
                     b"10=123|\n")
    assert scrub_message_log(path) == 1
    assert path.read_bytes().endswith(b"|553=u|554=***|10=123|\n")


def _scrub(data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fix_gateway.cli", "replay", "scrub", "--data-dir", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _decode(data: bytes) -> Message:
    items, oversized = Decoder().feed(data)
    assert oversized is None and len(items) == 1 and isinstance(items[0], Message), items
    return items[0]
