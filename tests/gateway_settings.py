"""Settings for in-process gateways in the tests: loopback on an ephemeral port, files
under the test's directory, no fsync. Each factory names the venue it builds; a test
module that uses the shared `gateway` fixture (conftest.py) returns one of them from
its `gateway_settings` fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fix_gateway.config import GatewaySettings

# Day orders expire at end_of_day: half a day from when the tests started, and the
# same for every gateway of the run (a restart with another value would be refused:
# the journal replays under the settings it was written with).
FAR_END_OF_DAY = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M:%S")


def loopback_settings(data_dir: Path, **sections: Any) -> GatewaySettings:
    """Listen on 127.0.0.1, an ephemeral port; store in `data_dir` without fsync.
    `sections` add or override top-level tables."""
    raw: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "store": {"data_dir": str(data_dir), "fsync": "none"},
    }
    raw.update(sections)
    return GatewaySettings.model_validate(raw)


def session_layer_settings(data_dir: Path, **server: object) -> GatewaySettings:
    """Two sessions, CLIENT1 and CLIENT2; `server` keys add to or override the server table."""
    return loopback_settings(
        data_dir,
        # Session-layer tests: application messages get BusinessMessageReject.
        server={"logon_timeout": 1.0, "tick_interval": 0.05, "application": "reject",
                **server},
        sessions=[
            {"SenderCompID": "FIXGW", "TargetCompID": "CLIENT1"},
            {"SenderCompID": "FIXGW", "TargetCompID": "CLIENT2"},
        ],
    )


ORDER_ENTRY_CLIENTS = ("CLIENT1", "CLIENT2", "CLIENT3")


def order_entry_settings(data_dir: Path, **sections: Any) -> GatewaySettings:
    """Order entry for CLIENT1-3 on five instruments (plain, a coarser tick, a price band,
    a lot size, a quantity cap), self-trade prevention cancelling the resting order.
    `sections` add or override top-level tables."""
    # Day orders expire at end_of_day: put it half a day away from now, so no
    # test ever runs across it.
    eod = FAR_END_OF_DAY
    return loopback_settings(data_dir, **{
        "server": {"logon_timeout": 2.0, "tick_interval": 0.05, "application": "orders"},
        "engine": {"stp_mode": "cancel_resting", "end_of_day": eod},
        "instruments": [
            {"symbol": "ACME", "tick_size": "0.01"},
            {"symbol": "GLOBEX", "tick_size": "0.05"},
            {"symbol": "BANDED", "tick_size": "0.01", "band_low": "90", "band_high": "110"},
            {"symbol": "LOTS", "tick_size": "0.01", "lot_size": 100},
            {"symbol": "CAPPED", "tick_size": "0.01", "max_qty": 1000},
        ],
        "sessions": [{"SenderCompID": "FIXGW", "TargetCompID": c} for c in ORDER_ENTRY_CLIENTS],
        **sections,
    })  # fmt: skip


def metrics_settings(data_dir: Path, **logging: object) -> GatewaySettings:
    """Order entry with the metrics endpoint on an ephemeral port and no message logs."""
    return order_entry_settings(
        data_dir,
        metrics={"enabled": True, "host": "127.0.0.1", "port": 0},
        logging={"messages": False, **logging},
    )
