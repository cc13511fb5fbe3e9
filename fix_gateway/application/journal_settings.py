"""The engine settings the journal was written under, kept beside it.

Recovery replays the journal through an engine built from the current
configuration. A changed tick size, lot size, price band, maximum quantity,
STP mode, end of day or iceberg slice limit would replay orders the venue already acknowledged
differently: a price of 1001 ticks of 0.01 would come back as 1001 ticks of
0.05. So the settings that shape the replay are saved with the journal, and a
start that changes them while the journal holds orders is refused, naming
each changed key. Adding instruments is always fine. A start from an engine
snapshot with nothing to replay after it (a clean stop) may change them all,
except the tick size of an instrument whose orders the snapshot keeps: their
prices are ticks of the old size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection
from decimal import Decimal
from pathlib import Path
from typing import Any

from fix_gateway.config import ConfigError, GatewaySettings

RECORD_NAME = "engine-settings.json"


def settings_record(settings: GatewaySettings) -> dict[str, Any]:
    """What the replay depends on, as JSON-able values that compare by meaning."""

    def number(value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")

    return {
        "engine": {"stp_mode": settings.engine.stp_mode,
                   "end_of_day": settings.engine.end_of_day.isoformat(),
                   "max_iceberg_slices": settings.engine.max_iceberg_slices},
        "instruments": {
            i.symbol: {"tick_size": number(i.tick_size), "lot_size": i.lot_size,
                       "band_low": number(i.band_low), "band_high": number(i.band_high),
                       "max_qty": i.max_qty}
            for i in settings.instruments
        },
    }


def changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each setting the replay depends on that differs, as "key: old -> new"."""
    out = [f"engine.{key}: {old!r} -> {current['engine'].get(key)!r}"
           for key, old in saved.get("engine", {}).items()
           if current["engine"].get(key) != old]
    for symbol, fields in saved.get("instruments", {}).items():
        now = current["instruments"].get(symbol)
        if now is None:
            out.append(f"instruments[{symbol}]: removed")
            continue
        out += [f"instruments[{symbol}].{key}: {old!r} -> {now.get(key)!r}"
                for key, old in fields.items() if now.get(key) != old]
    return out


def check_and_save(path: Path, settings: GatewaySettings,
                   replay_holds_orders: Callable[[], bool],
                   priced_symbols: Collection[str] = ()) -> bool:
    """Refuse settings that would replay the journal differently, or reprice the
    orders of `priced_symbols` (kept in the snapshot); else record them. True when
    they differ from the settings recorded before."""
    current = settings_record(settings)
    saved: dict[str, Any] | None = None
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: unreadable ({exc}); it records the settings the "
                              "engine journal was written under") from exc
        if saved == current:
            return False  # nothing to write: a start on a full disk gets this far
        diff = changes(saved, current)
        if diff and replay_holds_orders():
            raise ConfigError(
                "the engine journal holds orders made under other settings, and replaying it "
                f"with these would change them: {'; '.join(diff)}. Put those settings back, "
                "or start a new history in another store.data_dir (the saved settings are in "
                f"{path})")
        repriced = [
            f"instruments[{symbol}].tick_size: {old!r} -> {new!r}"
            for symbol in sorted(priced_symbols)
            if (old := saved.get("instruments", {}).get(symbol, {}).get("tick_size"))
            != (new := current["instruments"].get(symbol, {}).get("tick_size"))
            and old is not None and new is not None]
        if repriced:
            raise ConfigError(
                "the engine snapshot keeps orders priced in ticks of the old size, which "
                f"the new one would reprice: {'; '.join(repriced)}. Put it back, or start a "
                f"new history in another store.data_dir (the saved settings are in {path})")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return saved is not None
