"""The stall watch under repeated stalls, in a real gateway subprocess: its loop
is held again and again (tests/stalling_gateway.py) past server.stall_seconds.
The process lives through all of them (faulthandler's timer, which this replaced,
crashed it with SIGSEGV), and the stall log shows the function that held it."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from fix_gateway.stall_watch import StallWatch
from tests.gateway_process import GatewayProcess
from tests.load_clients import CLIENTS, write_config
from tests.venue import Client

HOLDS = 6


async def test_a_gateway_held_again_and_again_survives_and_shows_where(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with config.open("a") as toml:
        toml.write("\n[server]\nstall_seconds = 0.25\n")
    log = tmp_path / "gw.log"
    gw = GatewayProcess(config, log=log, module="tests.stalling_gateway")
    try:
        await hold_repeatedly(gw.port)
        lost = None
    except (EOFError, ConnectionError) as exc:  # the gateway died: its exit status says how
        lost = exc
    rc = gw.stop()
    assert (rc, lost) == (0, None), log.read_text()[-2000:]
    assert "event=loop_stalled" in log.read_text()
    stacks = (tmp_path / "data" / "stalls.log").read_text()
    assert "Stall: event loop held for" in stacks, stacks
    assert "in hold_the_loop" in stacks, stacks


async def hold_repeatedly(port: int) -> None:
    client = await Client.logged_on(port, CLIENTS[0])
    for i in range(HOLDS):
        await client.send("H", (11, f"s{i}"), (55, "ACME"), (54, "1"))
        await client.next("8")  # answered after the hold
    await client.alive()
    await client.close()


@pytest.mark.unit
def test_the_watch_reports_a_stall_once_with_the_held_stack() -> None:
    """Sans-loop: a thread that stops beating is sampled once per stall."""
    out = io.StringIO()
    watch = StallWatch(0.05, out)
    watch.start()
    try:
        held_here(watch)
        watch.beat()
        assert watch.reports == 1
    finally:
        watch.stop()
    assert out.getvalue().count("Stall: event loop held for") == 1
    assert "in held_here" in out.getvalue()
    assert f"Thread {threading.get_ident():#x} (event loop)" in out.getvalue()


def held_here(watch: StallWatch) -> None:
    """Hold this thread until the watch has reported (no timing assumption)."""
    deadline = time.monotonic() + 10
    while watch.reports == 0:
        assert time.monotonic() < deadline, "the watch did not report the stall"
        time.sleep(0.01)
