"""UTCTimestamp formatting and parsing (FIX 4.4: YYYYMMDD-HH:MM:SS[.sss]).

Time is a float of seconds since the epoch, passed in by the caller; nothing
here reads a clock. Formatting caches the text of the current second, so a
busy second costs one strftime, not one per message.
"""

from __future__ import annotations

import calendar
import re
import time
from enum import Enum
from typing import Final

_cached_second = -1
_cached_text = b""

_TIMESTAMP = re.compile(rb"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}|\d{6}|\d{9}))?")


def format_timestamp(now: float) -> bytes:
    """Millisecond UTCTimestamp for `now`."""
    global _cached_second, _cached_text
    second, millis = divmod(round(now * 1000), 1000)
    if second != _cached_second:
        _cached_text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(second)).encode()
        _cached_second = second
    return b"%b.%03d" % (_cached_text, millis)


def parse_timestamp(text: bytes) -> float | None:
    """Seconds since the epoch, or None when `text` is not a valid UTCTimestamp.

    The whole-second part is memoised: a busy second is parsed once, not once
    per message (SendingTime and TransactTime of a stream share it).
    """
    length = len(text)
    if length == 17:
        fraction = 0.0
    elif length in (21, 24, 27) and text[17] == 0x2E and text[18:].isdigit():  # "."
        fraction = int(text[18:]) / 10 ** (length - 18)
    else:
        return None
    head = text[:17]
    seconds = _SECONDS.get(head, _UNSEEN)
    if seconds is _UNSEEN:
        seconds = _parse_seconds(head)
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[head] = seconds
    return None if seconds is None else seconds + fraction


class _Unseen(Enum):
    """The cache's marker for a date and time not parsed yet (None is 'invalid')."""

    UNSEEN = 0


_UNSEEN: Final = _Unseen.UNSEEN
_SECONDS: dict[bytes, float | None] = {}


def _parse_seconds(text: bytes) -> float | None:
    """YYYYMMDD-HH:MM:SS -> seconds since the epoch, or None."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, _ = match.groups()
    y, mo, d, h, mi, s = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    # Year 0000 fits the pattern but is no date Python's calendar has (it raises).
    if not (y and 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    if d > calendar.monthrange(y, mo)[1]:
        return None
    return float(calendar.timegm((y, mo, d, h, mi, min(s, 59), 0, 0, 0)))
