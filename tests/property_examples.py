"""How many examples a property test tries: the count it names in a full run, a tenth
of it (at least 20) in the fast lane, where `make test-fast` sets
FIXGW_FAST_PROPERTIES=1 (conftest.py also lowers Hypothesis's default there)."""

from __future__ import annotations

import os

FAST = os.environ.get("FIXGW_FAST_PROPERTIES") == "1"
FAST_MINIMUM = 20


def examples(full: int) -> int:
    return max(FAST_MINIMUM, full // 10) if FAST else full
