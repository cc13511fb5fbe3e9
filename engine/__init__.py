"""Price-time matching engine: sans-I/O, one writer, integers inside.

`MatchingEngine.process(command)` takes one command (engine.types) and returns
its sequence-numbered events; `ReferenceEngine` (engine.reference) is the slow,
obviously correct twin the tests hold it against.

`MatchingEngine` here is the compiled engine (engine.compiled, built by setup.py
from the same sources) where it is built, unless `FIXGW_PURE=1`; else the pure
one, `engine.engine.MatchingEngine` (also `PureMatchingEngine`), which stays the
reference. Both behave identically: the tests hold one against the other.
"""

import os
from typing import TYPE_CHECKING, cast

from engine.engine import MatchingEngine as PureMatchingEngine
from engine.types import (
    CXL_DUPLICATE_CLORDID,
    CXL_OTHER,
    CXL_TOO_LATE,
    CXL_UNKNOWN_ORDER,
    REJ_BROKER_OPTION,
    REJ_DUPLICATE_ORDER,
    REJ_EXCHANGE_CLOSED,
    REJ_INCORRECT_QUANTITY,
    REJ_INVALID_PRICE_INCREMENT,
    REJ_OTHER,
    REJ_TOO_LATE,
    REJ_UNKNOWN_ORDER,
    REJ_UNKNOWN_SYMBOL,
    REJ_UNSUPPORTED_CHARACTERISTIC,
    RESPONSE_TO_CANCEL,
    RESPONSE_TO_REPLACE,
    Accepted,
    AdvanceTime,
    Cancelled,
    CancelOrder,
    CancelRejected,
    Command,
    Event,
    Expired,
    Instrument,
    MassCancel,
    MassCancelReport,
    MassCancelScope,
    NewOrder,
    OrderState,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Rejected,
    RejectOrder,
    Replaced,
    ReplaceOrder,
    Side,
    StatusReport,
    StpMode,
    TimeInForce,
    Trade,
    Triggered,
)


def fixgw_pure() -> bool:
    """Whether `FIXGW_PURE=1` asks for the pure-Python modules."""
    return os.environ.get("FIXGW_PURE") == "1"


def compiled_engine() -> type[PureMatchingEngine] | None:
    """The compiled MatchingEngine, or None where it is not built."""
    try:
        from engine.compiled.engine import MatchingEngine as compiled
    except ImportError:
        return None
    return cast("type[PureMatchingEngine]", compiled)  # no source to check: one interface


if TYPE_CHECKING:  # one interface: type checkers see the pure class
    from engine.engine import MatchingEngine
else:
    MatchingEngine = (
        PureMatchingEngine if fixgw_pure() else compiled_engine() or PureMatchingEngine
    )

__all__ = [
    "CXL_DUPLICATE_CLORDID",
    "CXL_OTHER",
    "CXL_TOO_LATE",
    "CXL_UNKNOWN_ORDER",
    "REJ_BROKER_OPTION",
    "REJ_DUPLICATE_ORDER",
    "REJ_EXCHANGE_CLOSED",
    "REJ_INCORRECT_QUANTITY",
    "REJ_INVALID_PRICE_INCREMENT",
    "REJ_OTHER",
    "REJ_TOO_LATE",
    "REJ_UNKNOWN_ORDER",
    "REJ_UNKNOWN_SYMBOL",
    "REJ_UNSUPPORTED_CHARACTERISTIC",
    "RESPONSE_TO_CANCEL",
    "RESPONSE_TO_REPLACE",
    "Accepted",
    "AdvanceTime",
    "CancelOrder",
    "CancelRejected",
    "Cancelled",
    "Command",
    "Event",
    "Expired",
    "Instrument",
    "MassCancel",
    "MassCancelReport",
    "MassCancelScope",
    "MatchingEngine",
    "NewOrder",
    "OrdStatus",
    "OrdType",
    "OrderState",
    "OrderStatusRequest",
    "PureMatchingEngine",
    "RejectOrder",
    "Rejected",
    "ReplaceOrder",
    "Replaced",
    "Side",
    "StatusReport",
    "StpMode",
    "TimeInForce",
    "Trade",
    "Triggered",
]
