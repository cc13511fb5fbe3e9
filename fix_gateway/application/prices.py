"""Decimal strings at the FIX boundary <-> integer ticks and units inside.

Conversions are exact (no float): a price is parsed into units of the tick
size's decimal places, then divided by the tick in those units; a price
that is not a whole number of ticks is reported, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from engine.types import Instrument

# Whole digits a decimal is read to: far past every venue range (MAX_PRICE_TICKS,
# MAX_ORDER_QTY) and cheap for int(), which raises past 4,300 digits. A value with
# more saturates at +-10**MAX_WHOLE_DIGITS, so the range checks refuse it as out of
# range instead of anything converting the peer's digits.
MAX_WHOLE_DIGITS = 30
_SATURATED = b"1" + b"0" * MAX_WHOLE_DIGITS


class PriceScale:
    """Exact conversions for one instrument's tick size."""

    __slots__ = ("_pow", "_saturated", "decimals", "tick_units")

    def __init__(self, tick_size: Decimal) -> None:
        exponent = tick_size.normalize().as_tuple().exponent
        self.decimals = max(0, -int(exponent))
        self._pow = 10**self.decimals
        self._saturated = int(_SATURATED) * self._pow
        self.tick_units = int(tick_size * self._pow)
        if self.tick_units <= 0:
            raise ValueError(f"tick size must be positive: {tick_size}")

    def to_ticks(self, text: bytes) -> int | None:
        """Ticks for a FIX price, or None when it is malformed or off tick."""
        units = parse_decimal(text, self.decimals)
        if units is None:
            return None
        if units % self.tick_units and abs(units) < self._saturated:
            return None  # off tick; a saturated value is out of range whatever its tick
        return units // self.tick_units

    def to_text(self, ticks: int) -> bytes:
        units = ticks * self.tick_units
        if not self.decimals:
            return b"%d" % units
        sign = b"-" if units < 0 else b""
        whole, frac = divmod(abs(units), self._pow)
        return b"%b%d.%0*d" % (sign, whole, self.decimals, frac)

    def average(self, cum_value: int, cum_qty: int) -> bytes:
        """AvgPx for `cum_value` (ticks x qty) over `cum_qty`, to 4 more decimals."""
        if cum_qty == 0:
            return b"0"
        scale = 10 ** (self.decimals + 4)
        units = (cum_value * self.tick_units * 10**4 * 2 + cum_qty) // (2 * cum_qty)  # rounded
        whole, frac = divmod(units, scale)
        text = b"%d.%0*d" % (whole, self.decimals + 4, frac)
        return text.rstrip(b"0").rstrip(b".") if b"." in text else text


def parse_decimal(text: bytes, decimals: int) -> int | None:
    """`text` as an integer count of 10**-decimals units; None if not exact or malformed.

    Saturates: beyond MAX_WHOLE_DIGITS whole digits the value is +-10**MAX_WHOLE_DIGITS.
    """
    negative = text[:1] == b"-"
    if negative:
        text = text[1:]
    whole, dot, frac = text.partition(b".")
    if not (whole.isdigit() or (dot and not whole)) or (frac and not frac.isdigit()):
        return None
    if dot and not whole and not frac:
        return None
    if len(frac) > decimals:
        if frac[decimals:].strip(b"0"):
            return None
        frac = frac[:decimals]
    if len(whole) > MAX_WHOLE_DIGITS:
        whole = whole.lstrip(b"0")
        if len(whole) > MAX_WHOLE_DIGITS:
            whole, frac = _SATURATED, b""
    units: int = int(whole or b"0") * 10**decimals + int(frac.ljust(decimals, b"0") or b"0")
    return -units if negative else units


def parse_quantity(text: bytes) -> int | None:
    """A whole-unit quantity ("100", "100.0"); None if fractional or malformed."""
    return parse_decimal(text, 0)


def scales_for(instruments: dict[str, Instrument]) -> dict[str, PriceScale]:
    return {symbol: PriceScale(inst.tick_size) for symbol, inst in instruments.items()}
