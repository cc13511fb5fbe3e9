"""fsync off the event loop: a daemon thread syncs dirty files on an interval.

With the `interval` fsync policy the loop only marks a file dirty after its
write (nanoseconds); this thread fsyncs every dirty file once per interval
(os.fsync releases the GIL, so the loop keeps serving meanwhile). Written
bytes are in the OS page cache before any answer leaves, so a process crash
loses nothing; a power loss can lose at most about one interval.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("fixgw.store")


class BackgroundSyncer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._dirty: set[int] = set()
        self._dirty_lock = threading.Lock()  # held for a set operation only
        self._round_lock = threading.Lock()  # held while a round of fsyncs runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def mark(self, *fds: int) -> None:
        """These files were written to: fsync them in the next round."""
        with self._dirty_lock:
            self._dirty.update(fds)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fixgw-fsync", daemon=True)
            self._thread.start()

    def forget(self, fd: int) -> None:
        """`fd` is about to be closed: sync it now and drop it from the rounds."""
        with self._round_lock, self._dirty_lock:
            if fd in self._dirty:
                self._dirty.discard(fd)
                os.fsync(fd)

    def sync_now(self) -> None:
        """Run a round immediately (shutdown, tests)."""
        self._round()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._round()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._round()

    def _round(self) -> None:
        with self._round_lock:
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            for fd in dirty:
                try:
                    os.fsync(fd)
                except OSError as exc:  # closed meanwhile, or an I/O error worth a log line
                    log.error("event=fsync_error fd=%d error=%r", fd, exc)
            self.rounds += 1
