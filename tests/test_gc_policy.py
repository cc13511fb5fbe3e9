"""fix_gateway.gc_policy: the survivors of every collection are frozen, so memory
stays bounded only if what the engine lets go of is freed by reference counting.
These tests check that (both engine builds), and that a full collection frees
the cycles that died frozen. Counts of objects, never time."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import CancelOrder, Instrument, MatchingEngine, NewOrder, OrdType, Side, TimeInForce
from engine.engine import DAY_NS
from fix_gateway import gc_policy
from fix_gateway.server import Gateway
from tests.engines import matching_engine  # noqa: F401  (every test: pure and compiled)
from tests.gateway_settings import FAR_END_OF_DAY, order_entry_settings

T0 = 20_000 * DAY_NS + 9 * 3_600 * 10**9
INSTRUMENTS = [Instrument("AAPL", band_low=50, band_high=200)]


@pytest.fixture
def policy() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc_policy.install(young_threshold=500)  # many young collections, many freezes
    try:
        yield
    finally:
        gc_policy.uninstall()
        gc.set_threshold(*threshold)


def churn(engine: MatchingEngine, start: int, n: int) -> None:
    """n orders through the book: resting ones (some cancelled, the rest filled by
    crossing IOC orders), so orders join and leave price levels and levels come
    and go."""
    ts = T0 + start * 1_000
    for i in range(start, start + n):
        ts += 1_000
        kind = i % 4
        if kind in (0, 1):  # resting buys at four prices
            engine.process(NewOrder(ts, "S1", "", f"o{i}", "AAPL", Side.BUY, OrdType.LIMIT,
                                    10, 100 + i % 4, None, TimeInForce.DAY))
        elif kind == 2:  # cancel the order of kind 0 of this cycle
            engine.process(CancelOrder(ts, "S1", f"c{i}", f"o{i - 2}", "AAPL", Side.BUY))
        else:  # a sell that takes whatever rests, the rest cancelled (IOC)
            engine.process(NewOrder(ts, "S2", "", f"o{i}", "AAPL", Side.SELL, OrdType.LIMIT,
                                    40, 90, None, TimeInForce.IOC))


def test_orders_freed_after_being_frozen_do_not_pile_up(policy: None) -> None:
    engine = MatchingEngine(INSTRUMENTS, done_orders_kept=1_000)
    churn(engine, 0, 20_000)  # warm up: the kept window of done orders fills
    frozen = gc.get_freeze_count()
    for start in range(20_000, 120_000, 500):
        churn(engine, start, 500)
        gc.collect(0)  # a young collection: what lives now is frozen
    # 100,000 more orders went through, each frozen while it rested or was kept;
    # those done and forgotten were freed by reference counting, frozen or not.
    assert gc.get_freeze_count() - frozen < 5_000
    assert len(engine.dump()["done_orders"]) <= 1_000


def test_full_collection_frees_cycles_that_died_frozen(policy: None) -> None:
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gc.collect(0)  # survived a young collection: frozen
    alive = weakref.ref(a)
    del a, b
    gc.collect()  # automatic and explicit collections leave the frozen alone
    assert alive() is not None
    assert gc_policy.full_collection() >= 2
    assert alive() is None
    assert gc_policy.installed()  # and the policy still holds
    assert gc.get_freeze_count() > 0


def test_uninstall_restores_collections_of_everything(policy: None) -> None:
    gc_policy.uninstall()
    assert gc.get_freeze_count() == 0
    assert not gc_policy.installed()
    gc_policy.install(young_threshold=500)  # for the fixture's teardown


def test_each_tick_collection_freezes_what_lives(policy: None) -> None:
    frozen = gc.get_freeze_count()
    kept = [[i] for i in range(1_000)]  # 1,001 lists: fewer than the threshold counts
    gc_policy.young_collection()
    assert gc.get_freeze_count() >= frozen + 1_001
    assert all(o is not kept for o in gc.get_objects(generation=0))


@pytest.mark.parametrize("snapshots", [True, False])
async def test_the_venue_frees_frozen_cycles_at_each_end_of_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshots: bool
) -> None:
    """The daily full collection is what bounds the cycles frozen during the day, so
    it must not depend on engine snapshots being on."""
    full: list[int] = []
    monkeypatch.setattr(gc_policy, "full_collection", lambda: full.append(1) or 0)
    gw = Gateway(order_entry_settings(tmp_path, engine={
        "end_of_day": FAR_END_OF_DAY, "snapshots": snapshots}))
    assert gw.order_entry is not None
    try:
        now = time.time()
        gw.tick(now)
        assert full == []
        gw.tick(now + 86_400)  # past the end of day: Day orders expire, a new day begins
        assert full == [1]
        gw.tick(now + 86_401)
        assert full == [1]  # once a day
    finally:
        await gw.stop(drain_timeout=0)
