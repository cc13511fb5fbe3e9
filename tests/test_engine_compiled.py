"""The compiled engine against the pure one: the same events, state and snapshots.

engine.compiled is built by setup.py from engine/book.py and engine/engine.py
themselves; these tests hold the two builds against each other on random command
streams of every order type (limit, market, stop, stop-limit; Day, GTC, GTD, IOC,
FOK; icebergs, MinQty; cancels, replaces, mass cancels, status requests, refused
orders, time jumps; self-trade prevention in every mode). Events must be equal
down to the type of every value (an IntEnum member stays one), and so must the
dump, state hash, snapshot, open orders and depth after the stream. Skipped
where the compiled engine is not built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import PureMatchingEngine, compiled_engine
from engine import snapshot as snap
from tests.engine_streams import (
    END_OF_DAY,
    INSTRUMENTS,
    KINDS,
    build_stream,
    engine_options,
    streams,
)
from tests.property_examples import examples

CompiledMatchingEngine = compiled_engine()
pytestmark = pytest.mark.skipif(CompiledMatchingEngine is None,
                                reason="compiled engine not built (setup.py build_ext)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Longer streams than the reference test's: deeper books, more sweeps and cascades.
long_streams = st.lists(
    st.tuples(st.integers(0, len(KINDS) - 1), st.integers(0, 2**32 - 1)),
    min_size=100, max_size=400,
).map(build_stream)


def typed(value: Any) -> Any:
    """`value` with the type of every part spelled out: equal only if the types are."""
    if isinstance(value, tuple | list):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


def both(options: dict[str, Any]) -> tuple[Any, Any]:
    assert CompiledMatchingEngine is not None
    return (PureMatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options),
            CompiledMatchingEngine(INSTRUMENTS, end_of_day=END_OF_DAY, **options))


def assert_same_state(pure: Any, compiled: Any) -> None:
    assert compiled.dump() == pure.dump()
    assert compiled.state_hash() == pure.state_hash()
    assert typed(compiled.open_orders()) == typed(pure.open_orders())
    assert snap.take(compiled) == snap.take(pure)
    assert compiled.next_expiry == pure.next_expiry
    assert compiled.next_end_of_day == pure.next_end_of_day
    for symbol in ("X", "Y"):
        assert compiled.book(symbol).depth(10) == pure.book(symbol).depth(10)
        assert compiled.book(symbol).best_bid() == pure.book(symbol).best_bid()
        assert compiled.book(symbol).best_ask() == pure.book(symbol).best_ask()
        assert compiled.book(symbol).live_count() == pure.book(symbol).live_count()


@pytest.mark.slow
@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=streams, options=engine_options)
def test_compiled_engine_gives_the_pure_engines_events(
    commands: list[Any], options: dict[str, Any]
) -> None:
    pure, compiled = both(options)
    for command in commands:
        assert typed(compiled.process(command)) == typed(pure.process(command)), command
        assert compiled.state_hash() == pure.state_hash(), command
    assert_same_state(pure, compiled)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=long_streams, options=engine_options)
def test_compiled_engine_agrees_on_long_streams(
    commands: list[Any], options: dict[str, Any]
) -> None:
    pure, compiled = both(options)
    for command in commands:
        assert typed(compiled.process(command)) == typed(pure.process(command)), command
    assert_same_state(pure, compiled)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=streams, options=engine_options, cut=st.floats(0, 1))
def test_snapshots_cross_between_the_builds(
    commands: list[Any], options: dict[str, Any], cut: float
) -> None:
    """A snapshot of either build restores into the other, which then goes on the same."""
    at = int(cut * len(commands))
    pure, compiled = both(options)
    for command in commands[:at]:
        pure.process(command)
        compiled.process(command)
    settings_ = (INSTRUMENTS, options["stp_mode"], END_OF_DAY)
    slices = options["max_iceberg_slices"]
    from_pure = snap.restore(snap.take(pure), *settings_, max_iceberg_slices=slices,
                             engine_type=CompiledMatchingEngine)
    from_compiled = snap.restore(snap.take(compiled), *settings_, max_iceberg_slices=slices,
                                 engine_type=PureMatchingEngine)
    assert type(from_pure) is CompiledMatchingEngine
    for command in commands[at:]:
        expected = typed(pure.process(command))
        assert typed(from_pure.process(command)) == expected, command
        assert typed(from_compiled.process(command)) == expected, command
    assert_same_state(pure, from_pure)
    assert_same_state(from_compiled, from_pure)


def test_the_compiled_engine_runs_on_the_compiled_book() -> None:
    """Its imports bind the compiled book (engine.compiled.book), whose orders are C
    structs without a __dict__, not the pure one."""
    assert CompiledMatchingEngine is not None
    engine = CompiledMatchingEngine(INSTRUMENTS)
    book = engine.book("X")
    assert type(book).__module__ == "engine.compiled.book"
    assert type(book.bids).__module__ == "engine.compiled.book"
    pure_book = PureMatchingEngine(INSTRUMENTS).book("X")
    assert type(pure_book).__module__ == "engine.book"
    from engine.compiled.book import Order
    assert not hasattr(Order(), "__dict__")


@pytest.mark.process
@pytest.mark.parametrize(("pure", "expected"), [
    ("1", "engine.engine"), ("", "engine.compiled.engine"),
])
def test_fixgw_pure_picks_the_pure_engine(pure: str, expected: str) -> None:
    env = {**os.environ, "FIXGW_PURE": pure}
    out = subprocess.run(
        [sys.executable, "-c", "import engine; print(engine.MatchingEngine.__module__)"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == expected
