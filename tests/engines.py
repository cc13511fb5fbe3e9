"""The two builds of the matching engine, for tests that run against both.

A test module that imports `matching_engine` (an autouse fixture) runs each of
its tests once with the pure engine and once with the compiled one (skipped
where it is not built): the fixture rebinds the module's `MatchingEngine` and
`engine.MatchingEngine` (what `engine.snapshot.restore` builds by default).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import engine
from engine import PureMatchingEngine, compiled_engine

CompiledMatchingEngine = compiled_engine()

ENGINE_TYPES = [
    pytest.param(PureMatchingEngine, id="pure"),
    pytest.param(
        CompiledMatchingEngine, id="compiled",
        marks=pytest.mark.skipif(CompiledMatchingEngine is None,
                                 reason="compiled engine not built (setup.py build_ext)"),
    ),
]


@pytest.fixture(autouse=True, params=ENGINE_TYPES)
def matching_engine(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[type[PureMatchingEngine]]:
    engine_type = request.param
    monkeypatch.setattr(request.module, "MatchingEngine", engine_type)
    monkeypatch.setattr(engine, "MatchingEngine", engine_type)
    yield engine_type
