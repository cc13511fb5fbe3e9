"""Surveillance detectors over real engine events from the scenario generator.

Each abuse pattern is planted among background flow with a known account,
symbol and time; the detectors (MLX and NumPy) must flag exactly those, at
those times, and nothing on clean background flow. The live monitor, fed the
same flow in slices, must write the same alerts to alerts.jsonl, once each.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from engine.types import NewOrder, OrdType, Side, TimeInForce
from surveillance.alerts import Alert
from surveillance.batch import apply_overrides
from surveillance.columns import NCOL, QTY, STATUS, Batch
from surveillance.detectors import run_detectors
from surveillance.evaluator import Evaluator
from surveillance.monitor import SurveillanceMonitor
from surveillance.ops import make_ops
from surveillance.scenarios import (
    BENEFICIAL_OWNERS,
    CLOSE,
    FAIR,
    Planted,
    Scenario,
    clean_flow,
    planted_flow,
)
from surveillance.settings import SurveillanceSettings

SETTINGS = SurveillanceSettings(beneficial_owners=BENEFICIAL_OWNERS)
BACKENDS = ("mlx", "numpy")
# How far an alert's time may lie before the planted time: the detector's window.
WINDOW = {"order_to_trade": 60, "message_burst": 1, "spoofing": 5, "wash_trade": 0,
          "momentum_ignition": 0, "marking_close": 0}


@pytest.fixture(scope="module")
def planted() -> Scenario:
    return planted_flow(seed=7)


@pytest.fixture(scope="module")
def planted_batch(planted: Scenario) -> Batch:
    return planted.batch()


def matches(alert: Alert, p: Planted) -> bool:
    if (alert.type, alert.account, alert.symbol) != (p.type, p.account, p.symbol):
        return False
    at = alert.time.timestamp() * 1e9
    return at - 1e6 <= p.ts <= at + WINDOW[p.type] * 1e9 + 1e6


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_planted_pattern_is_flagged_with_its_account_and_time(
        planted: Scenario, planted_batch: Batch, backend: str) -> None:
    alerts = run_detectors(planted_batch, SETTINGS, make_ops(backend))
    assert {p.type for p in planted.planted} == {
        "wash_trade", "spoofing", "momentum_ignition", "marking_close", "message_burst",
        "order_to_trade"}
    for p in planted.planted:
        assert any(matches(a, p) for a in alerts), (p, alerts)
    # ... and nothing else: every alert is one of the planted patterns.
    for a in alerts:
        assert any(matches(a, p) for p in planted.planted), a


def test_alert_details_describe_the_pattern(planted_batch: Batch) -> None:
    alerts = {a.type: a for a in run_detectors(planted_batch, SETTINGS, make_ops("numpy"))}
    spoof = alerts["spoofing"].details
    assert spoof["fill_side"] == "sell" and 0 < spoof["filled_qty"] <= 100
    assert spoof["cancelled_opposite_qty"] == 10_000 and spoof["cancelled_levels"] == 5
    wash = [a for a in run_detectors(planted_batch, SETTINGS, make_ops("numpy"))
            if a.type == "wash_trade"]
    assert {(a.account, a.details["counterparty"], a.details["owner"]) for a in wash} == {
        ("WASH_B", "WASH_A", "owner1"), ("SELFX", "SELFX", "same account")}
    ignition = alerts["momentum_ignition"].details
    assert ignition["to_price_ticks"] == 10_080 and ignition["move_bps"] >= 50
    assert alerts["marking_close"].details["to_price_ticks"] == 10_070


@pytest.mark.parametrize("seed", [1, 2])
def test_clean_background_flow_raises_no_alert(seed: int) -> None:
    batch = clean_flow(seed=seed, seconds=900).batch()
    assert len(batch) > 40_000
    for backend in BACKENDS:
        assert run_detectors(batch, SETTINGS, make_ops(backend)) == []


def test_mlx_and_numpy_give_the_same_alerts(planted_batch: Batch) -> None:
    loose = apply_overrides(SETTINGS, [  # lower thresholds: many alerts to compare
        "order_to_trade.min_orders=5", "order_to_trade.max_ratio=2",
        "message_burst.min_messages=3", "spoofing.min_levels=2", "spoofing.qty_ratio=1",
        "spoofing.min_layered_qty=50",
        "price_move.move_bps=5", "price_move.reversal_pct=20"])
    numpy_alerts = run_detectors(planted_batch, loose, make_ops("numpy"))
    mlx_alerts = run_detectors(planted_batch, loose, make_ops("mlx"))
    assert len(numpy_alerts) > 100
    assert {a.type for a in numpy_alerts} == set(WINDOW)
    assert [a.model_dump() for a in mlx_alerts] == [a.model_dump() for a in numpy_alerts]


def test_thresholds_change_what_is_flagged(planted_batch: Batch) -> None:
    strict = apply_overrides(SETTINGS, ["spoofing.qty_ratio=200", "price_move.move_bps=100",
                                        "message_burst.max_per_second=1000",
                                        "message_burst.min_messages=1000"])
    types = {a.type for a in run_detectors(planted_batch, strict, make_ops("numpy"))}
    assert types == {"wash_trade", "order_to_trade"}
    no_groups = SETTINGS.model_copy(update={"beneficial_owners": {}})
    wash = [a for a in run_detectors(planted_batch, no_groups, make_ops("numpy"))
            if a.type == "wash_trade"]
    assert [a.account for a in wash] == ["SELFX"]  # same account still counts


def test_retention_must_cover_the_longest_window() -> None:
    with pytest.raises(ValueError, match="retention_s must be at least 70"):
        SurveillanceSettings(retention_s=60)


def test_override_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="qty_ratio"):
        apply_overrides(SETTINGS, ["spoofing.qty_ratio=zero"])
    with pytest.raises(ValueError, match="nosuch"):
        apply_overrides(SETTINGS, ["nosuch.key=1"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(SETTINGS, ["spoofing.qty_ratio"])


def test_empty_history_raises_nothing() -> None:
    empty = Batch.from_rows(__import__("numpy").zeros(0, dtype="int64"), [], [])
    assert empty.cols.shape == (NCOL, 0)
    for backend in BACKENDS:
        assert run_detectors(empty, SETTINGS, make_ops(backend)) == []


@pytest.mark.process  # the default worker: a child process
def test_monitor_fed_in_slices_writes_each_alert_once(tmp_path: Path,
                                                      planted_batch: Batch) -> None:
    """The live path: rows arrive between evaluations; alerts.jsonl gets each alert once
    and the same alerts as one batch run over everything."""
    settings = SETTINGS.model_copy(update={"retention_s": 3600})
    monitor = SurveillanceMonitor(settings, tmp_path)
    seen: list[Alert] = []
    monitor.on_alert.append(seen.append)
    scenario = planted_flow(seed=7)
    rows = scenario.columns
    cols = planted_batch.cols

    async def drive() -> None:
        # Hand the monitor the scenario's rows in ten slices, as the hot path would.
        for chunk in range(10):
            lo, hi = chunk * cols.shape[1] // 10, (chunk + 1) * cols.shape[1] // 10
            monitor.columns._rows.extend(cols[:, lo:hi].T.ravel().tolist())
            monitor.columns.accounts.names[:] = planted_batch.accounts
            monitor.columns.symbols.names[:] = planted_batch.symbols
            await monitor.evaluate()
        await monitor.stop()

    asyncio.run(drive())
    assert rows is not None
    lines = (tmp_path / "surveillance" / "alerts.jsonl").read_text().splitlines()
    written = [Alert.model_validate(json.loads(line)) for line in lines]
    expected = run_detectors(planted_batch, settings, make_ops("mlx"))
    assert sorted(a.key for a in written) == sorted(a.key for a in expected)
    assert len({a.key for a in written}) == len(written)
    assert [a.key for a in seen] == [a.key for a in written]
    assert monitor.alert_counts["wash_trade"] == 2
    assert sum(monitor.alert_counts.values()) == len(written)


def test_monitor_keeps_columns_aligned_when_a_command_does_not_fit(tmp_path: Path) -> None:
    """A value beyond int64 loses that command's rows, not the alignment of the rest."""
    monitor = SurveillanceMonitor(SETTINGS.model_copy(update={"worker": "thread"}), tmp_path)
    order = NewOrder(10**18, "S", "ACC", "A", "ACME", Side.BUY, OrdType.LIMIT, 10, 1000, None,
                     TimeInForce.DAY, None, 0, 0)
    monitor.observe(order, [], 0.0)
    monitor.observe(order._replace(cl_ord_id="B", qty=10**30), [], 0.0)  # fails mid-row
    monitor.observe(order._replace(cl_ord_id="C"), [], 0.0)
    assert monitor.rows_lost == 1
    cols = monitor.columns.batch().cols
    assert cols.shape == (NCOL, 2) and list(cols[QTY]) == [10, 10]


def test_monitor_trims_history_without_false_alerts(tmp_path: Path) -> None:
    """With a short retention the history is cut; a cut window must not look like a
    burst or a high order-to-trade ratio."""
    settings = SurveillanceSettings(beneficial_owners=BENEFICIAL_OWNERS, retention_s=75,
                                    interval=0.01, worker="thread")
    monitor = SurveillanceMonitor(settings, tmp_path)
    scenario = Scenario(seed=3, rate=300.0)
    scenario.seed_books(scenario.symbols)

    async def drive() -> None:
        for _ in range(12):
            scenario.background(scenario.now + 20 * 10**9)
            cols = scenario.columns
            monitor.columns._rows.extend(cols._rows)
            cols._rows = type(cols._rows)("q")
            monitor.columns.accounts.names[:] = cols.accounts.names
            monitor.columns.symbols.names[:] = cols.symbols.names
            assert await monitor.evaluate() == []
        await monitor.stop()

    asyncio.run(drive())
    assert isinstance(monitor.evaluator, Evaluator) and monitor.evaluator.history is not None
    history = monitor.evaluator.history
    span = history.cols[0, -1] - history.cols[0, 0]
    assert span <= 75 * 10**9


def feed_in_slices(monitor: SurveillanceMonitor, batch: Batch, seconds: int) -> list[int]:
    """Hand the monitor the batch's rows `seconds` of flow at a time, as the hot path
    would, evaluating after each slice; return the rows each evaluation saw."""
    cols = batch.cols
    edges = np.searchsorted(cols[0], np.arange(cols[0, 0], cols[0, -1] + seconds * 10**9,
                                               seconds * 10**9))
    seen: list[int] = []

    async def drive() -> None:
        for lo, hi in itertools.pairwise([*edges.tolist(), cols.shape[1]]):
            monitor.columns._rows.extend(cols[:, lo:hi].T.ravel().tolist())
            monitor.columns.accounts.names[:] = batch.accounts
            monitor.columns.symbols.names[:] = batch.symbols
            await monitor.evaluate()
            if isinstance(monitor.evaluator, Evaluator):
                seen.append(monitor.evaluator.evaluated_rows)
        await monitor.stop()

    asyncio.run(drive())
    return seen


@pytest.mark.parametrize("worker", ["thread", pytest.param("process", marks=pytest.mark.process)])
def test_incremental_evaluation_finds_what_a_full_batch_finds(
        tmp_path: Path, planted_batch: Batch, worker: str) -> None:
    """Evaluated 20 s at a time, each time over only the rows the new ones can affect
    (plus each symbol's last trade), the live monitor writes exactly the alerts one
    batch run over the whole 30 minutes finds, each once."""
    loose = apply_overrides(SETTINGS, [  # many alerts of every type, near every cut
        "order_to_trade.min_orders=5", "order_to_trade.max_ratio=2",
        "message_burst.min_messages=3", "spoofing.min_levels=2", "spoofing.qty_ratio=1",
        "spoofing.min_layered_qty=50", "price_move.move_bps=5", "price_move.reversal_pct=20",
        f"worker={worker}"])
    monitor = SurveillanceMonitor(loose, tmp_path)
    seen = feed_in_slices(monitor, planted_batch, 20)
    lines = (tmp_path / "surveillance" / "alerts.jsonl").read_text().splitlines()
    written = [Alert.model_validate(json.loads(line)) for line in lines]
    expected = run_detectors(planted_batch, loose, make_ops("numpy"))
    assert len(expected) > 100 and {a.type for a in expected} == set(WINDOW)
    assert sorted(a.key for a in written) == sorted(a.key for a in expected)
    assert len({a.key for a in written}) == len(written)
    if worker == "thread":  # each evaluation saw the horizon, not the whole history
        assert max(seen) < len(planted_batch) // 10


def test_incremental_evaluation_remembers_the_last_price_of_a_quiet_symbol(
        tmp_path: Path) -> None:
    """A symbol trades once, then not for half an hour, then one order sweeps it near
    the close: the move is measured from that old trade, long out of the evaluated
    rows -- the monitor carries each symbol's last trade."""
    scenario = Scenario(seed=5, rate=20.0)
    scenario.seed_books([*scenario.symbols, "CLOSESYM"])
    scenario.order("EARLY", "CLOSESYM", Side.BUY, 10, FAIR + 1, TimeInForce.IOC)
    scenario.background(CLOSE - 120 * 10**9)  # other symbols only
    scenario.plant_close()
    batch = scenario.batch()
    expected = run_detectors(batch, SETTINGS, make_ops("numpy"))
    assert [(a.type, a.account) for a in expected] == [("marking_close", "CLOSER")]
    monitor = SurveillanceMonitor(SETTINGS.model_copy(update={"worker": "thread"}), tmp_path)
    seen: list[Alert] = []
    monitor.on_alert.append(seen.append)
    feed_in_slices(monitor, batch, 20)
    assert [a.model_dump() for a in seen] == [a.model_dump() for a in expected]


@pytest.mark.process
def test_a_lost_worker_process_is_replaced(tmp_path: Path, planted_batch: Batch) -> None:
    """The detectors run in a child process; if it dies the evaluation fails (logged by
    the interval task) and the next one starts a new child that still finds alerts."""
    import os
    import signal

    from surveillance.worker import ProcessEvaluator

    monitor = SurveillanceMonitor(SETTINGS, tmp_path)
    assert isinstance(monitor.evaluator, ProcessEvaluator)
    half = planted_batch.cols.shape[1] // 2

    def hand_over(lo: int, hi: int) -> None:
        monitor.columns._rows.extend(planted_batch.cols[:, lo:hi].T.ravel().tolist())
        monitor.columns.accounts.names[:] = planted_batch.accounts
        monitor.columns.symbols.names[:] = planted_batch.symbols

    async def drive() -> list[Alert]:
        hand_over(0, 10)
        await monitor.evaluate()
        first = monitor.evaluator.pid
        assert first is not None and first != os.getpid()
        os.kill(first, signal.SIGKILL)
        hand_over(10, half)
        with pytest.raises(RuntimeError, match="worker process lost"):
            await monitor.evaluate()
        hand_over(half, planted_batch.cols.shape[1])
        found = await monitor.evaluate()
        assert monitor.evaluator.pid not in (None, first)
        await monitor.stop()
        return found

    found = asyncio.run(drive())
    assert "marking_close" in {a.type for a in found}  # planted in the second half
    assert monitor.evaluator.pid is None


START_S = 1_800_000_000  # any second: the detectors read time from the rows


def status_requests(account: int, start_s: int, per_second: list[int]) -> np.ndarray:
    """Rows of OrderStatusRequests (messages, not orders) from one account, spread
    evenly over each second from `start_s`: per_second[i] of them in second i."""
    rows = []
    for i, n in enumerate(per_second):
        for j in range(n):
            ts = (START_S + start_s + i) * 10**9 + j * (10**9 // n)
            rows.append((ts, STATUS, account, -1, -1, 0, 0, 0, 0, 0))
    return np.array(rows, dtype=np.int64).reshape(-1, NCOL)


def message_flow(*flows: np.ndarray) -> Batch:
    rows = np.concatenate(flows)
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    return Batch.from_rows(rows, [f"ACC{i}" for i in range(len(flows))], [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_accounts_busy_from_a_cold_start_are_not_bursts(backend: str) -> None:
    """A firm that sends a steady 55 messages/s from its first second has no baseline
    to burst above: nothing is flagged, whenever each account starts."""
    batch = message_flow(*(status_requests(a, 40 * a, [55] * 150) for a in range(3)))
    assert run_detectors(batch, SETTINGS, make_ops(backend)) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_bursts_are_flagged_after_history_and_above_the_ceiling_from_the_start(
        backend: str) -> None:
    quiet_then_burst = status_requests(0, 0, [2] * 60 + [120] + [2] * 10)
    ceiling_at_once = status_requests(1, 30, [250] + [55] * 20)
    alerts = run_detectors(message_flow(quiet_then_burst, ceiling_at_once), SETTINGS,
                           make_ops(backend))
    assert [(a.type, a.account, int(a.time.timestamp()) - START_S) for a in alerts] == [
        ("message_burst", "ACC1", 30), ("message_burst", "ACC0", 60)]
    assert alerts[1].details == {"messages_per_s": 120, "baseline_per_s": 2.0}


def test_burst_history_must_be_shorter_than_the_baseline() -> None:
    with pytest.raises(ValueError, match="min_history_s must be less than baseline_s"):
        apply_overrides(SETTINGS, ["message_burst.min_history_s=60"])
