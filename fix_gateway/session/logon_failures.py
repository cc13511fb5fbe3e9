"""Failed Logons per source address and target session, and the cool-down they earn.

After `max_failures` refused Logons (bad credentials, an address not on the
session's allow-list) from one address for one session within `window`
seconds, that address is locked out of that session for `lockout` seconds:
its Logons to it are refused at once, before any password is hashed. Logons
for unknown CompIDs count together under the target "". Each further lockout
doubles, up to `lockout_max`. A successful Logon forgets only the record of
the session it logged on to: a credential for one session must not buy fresh
password guesses against another. Time is passed in; nothing here sleeps, so a
locked-out address never holds up the event loop or anyone else. (Sans-I/O.)
"""

from __future__ import annotations

from collections import deque


class _Record:
    __slots__ = ("failures", "locked_until", "strikes")

    def __init__(self, max_failures: int) -> None:
        self.failures: deque[float] = deque(maxlen=max_failures)
        self.locked_until = 0.0
        self.strikes = 0  # lockouts so far; each one doubles the next


class LogonFailures:
    def __init__(
        self, max_failures: int = 5, window: float = 60.0, lockout: float = 10.0,
        lockout_max: float = 600.0, max_tracked: int = 100_000,
    ) -> None:
        self.max_failures = max_failures  # 0: never lock out
        self.window = window
        self.lockout = lockout
        self.lockout_max = lockout_max
        self.max_tracked = max_tracked  # (address, target)s remembered; bounds a storm
        self._records: dict[tuple[str, str], _Record] = {}

    def locked_for(self, host: str, target: str, now: float) -> float:
        """Seconds `host` must wait before its Logons to `target` are considered; 0: go."""
        record = self._records.get((host, target))
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - now)

    def failed(self, host: str, target: str, now: float) -> float:
        """Count a refused Logon from `host` to `target`; returns the lockout it starts."""
        if self.max_failures <= 0:
            return 0.0
        key = (host, target)
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= self.max_tracked:
                self._forget_idle(now)
            record = self._records[key] = _Record(self.max_failures)
        failures = record.failures
        failures.append(now)
        if len(failures) < self.max_failures or now - failures[0] > self.window:
            return 0.0
        duration = min(self.lockout * (1 << record.strikes), self.lockout_max)
        record.strikes += 1
        record.locked_until = now + duration
        failures.clear()
        return duration

    def succeeded(self, host: str, target: str) -> None:
        """`host` logged on to `target`: forget its failures there (and only there)."""
        self._records.pop((host, target), None)

    def _forget_idle(self, now: float) -> None:
        """Drop records neither locked nor recently failing; else the oldest half."""
        horizon = now - self.window
        idle = [k for k, r in self._records.items()
                if r.locked_until <= now and (not r.failures or r.failures[-1] < horizon)]
        if len(idle) < len(self._records) // 2:
            idle = list(self._records)[: len(self._records) // 2]
        for key in idle:
            del self._records[key]
