"""Logon secrets (Password 554, NewPassword 925, RawData 96) never reach the disk or the
replay tool in clear.

A gateway on a loopback port with a credentialed session; a client logs on
with a password and RawData, then sends a message carrying a NewPassword.
Every file under the data directory (session store, inbound store, message
logs) is searched for the secret bytes, and `fixgw replay show` is run as a
subprocess, in text and JSON. Files written before masking existed are
masked by `replay show` on display.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fix_gateway import auth
from fix_gateway.codec import Decoder, Message, checksum, encode, parse_fields
from fix_gateway.redaction import MASK, redacted
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
    store = FileStore(directory, FsyncPolicy.NONE, record_inbound=True)
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


def _decode(data: bytes) -> Message:
    items, oversized = Decoder().feed(data)
    assert oversized is None and len(items) == 1 and isinstance(items[0], Message), items
    return items[0]
