"""`fixgw surveil`: the live detectors over the stored engine history.

Every archived journal and then the live one (engine.history: the venue's
whole command history, snapshots notwithstanding) is read without changing
it (the gateway may be writing the live one: a torn tail is left out) and
replayed through a fresh `MatchingEngine` built from the configuration's
instruments; the events feed the same columns and detectors as the live
monitor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import MatchingEngine
from engine.history import EngineHistory
from engine.journal import JournalCorrupt, read_entries
from surveillance.alerts import Alert
from surveillance.columns import Batch, EventColumns
from surveillance.detectors import run_detectors
from surveillance.ops import make_ops
from surveillance.settings import SurveillanceSettings


def replay_columns(journals: list[Path], instruments: list[Any], stp: Any,
                   end_of_day: int) -> Batch:
    engine = MatchingEngine(instruments, stp, end_of_day=end_of_day)
    columns = EventColumns()
    for journal in journals:
        for entry in read_entries(journal):
            columns.observe(entry.command, engine.process(entry.command), 0.0)
    return columns.batch()


def apply_overrides(settings: SurveillanceSettings, pairs: list[str]) -> SurveillanceSettings:
    """`key.sub=value` pairs over the settings, validated (errors name the key). A value
    that parses as JSON is taken as such, e.g. beneficial_owners={"g": ["A", "B"]}."""
    data = settings.model_dump()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair!r}: expected key=value, e.g. spoofing.qty_ratio=3")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                raise ValueError(f"--set {pair!r}: unknown section {part!r}")
            node = child
        try:
            node[leaf] = json.loads(value)
        except ValueError:
            node[leaf] = value.strip()
    return SurveillanceSettings.model_validate(data)


def surveil(batch: Batch, settings: SurveillanceSettings) -> list[Alert]:
    return run_detectors(batch, settings, make_ops(settings.backend))


def main(config: Path | None, data_dir: Path | None, backend: str | None,
         overrides: list[str]) -> int:
    """The `fixgw surveil` command: alerts as JSON lines on stdout; 2 on bad config."""
    import sys

    from fix_gateway.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
        surveillance = apply_overrides(settings.surveillance, overrides)
        if backend is not None:
            surveillance = surveillance.model_copy(update={"backend": backend})
    except (ConfigError, ValueError) as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return 2
    history = EngineHistory((data_dir or settings.store.data_dir) / "engine")
    journals = history.paths()
    if not journals:
        print(f"fixgw: no engine journal at {history.journal_path}", file=sys.stderr)
        return 1
    try:
        batch = replay_columns(journals, [i.to_instrument() for i in settings.instruments],
                               settings.engine.stp, settings.engine.end_of_day_ns)
    except JournalCorrupt as exc:
        print(f"fixgw: {exc}: the journal is damaged before its end", file=sys.stderr)
        return 1
    for alert in surveil(batch, surveillance):
        sys.stdout.write(alert.model_dump_json() + "\n")
    return 0
