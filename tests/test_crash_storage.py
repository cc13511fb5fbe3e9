"""Storage that fails: the disk fills up under load, the data directory is read-only
at start. Real subprocesses (and one in-process gateway), real files.

Disk full is simulated with RLIMIT_FSIZE on the gateway process (Python ignores
SIGXFSZ, so a write past the limit fails with EFBIG, as ENOSPC would). Read-only
is a directory without write permission; root ignores permissions, so as root the
gateway runs without CAP_DAC_OVERRIDE (dropped from its bounding set), which makes
the permission bits apply to it like to anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import resource
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fix_gateway.application.journal_settings import RECORD_NAME, check_and_save
from fix_gateway.config import load_settings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.fix_peer import TcpPeer
from tests.gateway_process import REPO, GatewayProcess
from tests.gateway_settings import loopback_settings
from tests.load_clients import (
    LoadClient,
    assert_views_match_engine,
    load_clients,
    reconnect_and_recover,
    recover_and_hang_up,
    recover_then_load,
    remember_seqnums,
    restart_recover_and_check,
    write_config,
)

EXIT_FATAL = 3


def limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "first_to_fail", "drop_copy"),
    [
        # The drop-copy stream (every report of every session) outgrows the rest.
        (24 * 1024, "drop-copy stream write failed", True),
        # Without it, session stores outgrow the journal: a store write fails first.
        (24 * 1024, "session store write failed", False),
        # Room for the Logon replies (~90 bytes) but not for one journaled order (~105).
        (100, "engine journal write failed", True),
    ],
)
def test_disk_full_under_load_stops_clearly_and_loses_nothing_acknowledged(
    tmp_path: Path, limit: int, first_to_fail: str, drop_copy: bool,
) -> None:
    config = write_config(tmp_path)
    if not drop_copy:
        config.write_text(config.read_text() + "\n[drop_copy]\nenabled = false\n")
    log = tmp_path / "gw.log"
    views, clients, rng = load_clients(5)
    # A venue that has run before (its engine settings are on file), now short of space.
    settings_file = tmp_path / "data" / "engine" / RECORD_NAME
    settings_file.parent.mkdir(parents=True)
    check_and_save(settings_file, load_settings(config), lambda: False)
    # Its log goes to a pipe: a log file would be under the same limit.
    full = GatewayProcess(config, preexec_fn=limit_file_size(limit))

    async def trade_until_the_disk_is_full() -> int:
        await reconnect_and_recover(clients, full.port)
        for rounds in range(200):
            if full.proc.poll() is not None:
                return rounds
            for client in clients:
                # Once the gateway is gone, what it did not answer was not acknowledged.
                with contextlib.suppress(ConnectionError):
                    await client.send_random(10)
            for client in clients:
                with contextlib.suppress(ConnectionError):
                    await client.drain(quiet=0.2)
            if any(_cut_off(c) for c in clients):
                await asyncio.to_thread(full.proc.wait, 10)  # it is stopping
        return -1

    try:
        assert asyncio.run(trade_until_the_disk_is_full()) >= 0, "the disk never filled"
        assert full.proc.wait(10) == EXIT_FATAL
    finally:
        if full.proc.poll() is None:
            full.kill()
    remember_seqnums(clients)
    text = full.stderr_text()
    assert "event=fatal" in text and "File too large" in text
    assert f"fixgw: stopped: {first_to_fail}" in text
    assert "Traceback" not in text

    # Space again: the store and journal open cleanly, every acknowledged order is there.
    restart_recover_and_check(config, log, clients, views, rng, tmp_path / "data")


def _cut_off(client: LoadClient) -> bool:
    """The gateway closed this line: a FIN (EOF) or, when it aborts, a reset."""
    peer = client.peer
    return peer is None or peer.reader.at_eof() or peer.reader.exception() is not None


def _without_dac_override() -> None:
    """As root: lose the power to write where the permission bits say no."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override = 24, 1
    if libc.prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        mode = mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP
                                                             | stat.S_IWOTH)
        path.chmod(mode)


@pytest.mark.slow
def test_read_only_data_directory_is_a_clear_start_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    data = tmp_path / "data"
    views, clients, rng = load_clients(8)
    first = GatewayProcess(config, log=tmp_path / "gw.log")
    try:
        asyncio.run(recover_then_load(clients, first.port, rng, lambda: None, hang_up=True))
    finally:
        assert first.stop() == 0
    before = _tree_digest(data)

    _set_writable(data, False)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=30,
            preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
        )
    finally:
        _set_writable(data, True)
    assert result.returncode == 1, result.stderr
    assert "fixgw: cannot start:" in result.stderr and "Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
    assert _tree_digest(data) == before  # not a byte changed

    again = GatewayProcess(config, log=tmp_path / "gw.log")
    try:
        asyncio.run(recover_and_hang_up(clients, again.port))
        assert_views_match_engine(views, again.state(data))
    finally:
        assert again.stop() == 0


@pytest.mark.socket
async def test_journal_failure_leaves_no_report_of_what_it_did_not_journal(
    tmp_path: Path,
) -> None:
    """Regression: after a failed journal write, the disconnect handler flushed the
    session store, writing the ExecutionReport of an order the journal never got; a
    restart then resent a report for an order the engine did not have. The journal's
    file is swapped for /dev/full (writes fail with ENOSPC) while the gateway runs."""
    settings = loopback_settings(
        tmp_path,
        instruments=[{"symbol": "ACME"}],
        sessions=[{"SenderCompID": "FIXGW", "TargetCompID": "CLIENT1"}],
    )

    def order(peer: TcpPeer, cl: str) -> bytes:
        return peer.build("D", (11, cl), (38, 10), (40, 2), (44, "1.00"), (54, 1), (55, "ACME"),
                          (59, 1), (60, format_timestamp(time.time())), now=time.time())

    gw = Gateway(settings)
    await gw.start()
    peer = await TcpPeer.connect(gw.port)
    await peer.write(peer.logon(30, now=time.time()))
    assert (await peer.receive()).msg_type == b"A"
    await peer.write(order(peer, "KEPT"))
    assert (await peer.expect("8")).get(11) == b"KEPT"
    assert gw.journal is not None
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, gw.journal._fd)  # the disk is full from here on
    os.close(full)
    await peer.write(order(peer, "LOST"))
    assert await peer.closed_by_peer()  # cut off without a word about LOST
    assert gw.fatal_reason is not None and "engine journal write failed" in gw.fatal_reason
    await gw.stop(drain_timeout=0.2)
    stored = (tmp_path / "sessions" / "FIXGW-CLIENT1" / "messages.dat").read_bytes()
    assert b"\x0111=KEPT\x01" in stored and b"\x0111=LOST\x01" not in stored

    again = Gateway(settings)
    await again.start()
    try:
        assert again.order_entry is not None
        live = again.order_entry.engine.open_orders("FIXGW-CLIENT1")
        assert [o.cl_ord_id for o in live] == ["KEPT"]
    finally:
        await again.stop(drain_timeout=0.2)
