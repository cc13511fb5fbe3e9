"""The cyclic garbage collector's policy in `fixgw serve`: no loop stalls from it.

A collection of generation g traverses every tracked object in generations
0..g, on the event loop's thread. A venue keeps many long-lived objects
(up to `done_orders_kept` done orders, the live books, the sessions' state),
and CPython's default policy moves them up to the oldest generation and
traverses them again at every collection of it: tens of milliseconds with
100,000 done orders kept, the event loop held all that time.

Those objects do not need the collector: the engine frees an order by
reference counting (it unlinks it from its price level, `prev`/`next`/`level`
set to None, before it lets go of it; an empty level is dropped the same way),
and freeing is all the collector could do for them. So here each object is
traversed by at most one young collection: after every collection the
survivors are frozen (gc.freeze: moved to the permanent generation, which no
automatic collection visits). Generations 1 and 2 stay empty, and a young
collection (every tick, and every YOUNG_THRESHOLD container allocations
net of deallocations) costs what was allocated since, however much the venue
keeps. Reference counting still frees a frozen object
as soon as the last reference goes.

What this gives up: a reference cycle that becomes garbage after it was
frozen is not freed by the automatic collections. `full_collection` frees
those; the gateway calls it at quiet points where the loop already waits (after
the end-of-day snapshot, which holds the loop already), so memory stays bounded
by what leaks in a day. tests/test_gc_policy.py checks that freed orders do not
pile up in the permanent generation.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("fixgw.gc")

YOUNG_THRESHOLD = 5_000  # container allocations between young collections


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop":
        gc.freeze()


def install(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Freeze what exists now (start-up objects), then freeze the survivors of
    every collection. Idempotent."""
    gc.freeze()
    gc.set_threshold(young_threshold, 10, 10)
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def uninstall() -> None:
    """Back to CPython's defaults; frozen objects are visited by collections again."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)


def young_collection() -> None:
    """Collect generation 0 now and freeze its survivors; the gateway calls it every
    tick. The automatic trigger alone is not enough: CPython counts allocations
    minus deallocations, and a frozen order freed by reference counting (a done
    order leaving the kept window) cancels a new order's allocation, so in a steady
    flow the count stays under the threshold while generation 0 holds every new
    order: the one collection that finally comes traverses them all (127 and 145 ms
    at 10,000 orders/s in bench/loop_probe.py). Each tick's collection traverses what
    the last tick's worth of orders left alive."""
    if installed():
        gc.collect(0)


def installed() -> bool:
    return _freeze_survivors in gc.callbacks


def full_collection() -> int:
    """Collect everything, frozen objects included, and freeze the survivors again.
    Holds the caller for a full collection (about 0.1 s per million objects): call
    it where the loop waits anyway. Returns the objects found unreachable; does
    nothing (0) where the policy is not installed."""
    if not installed():
        return 0
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    log.info("event=gc_full_collection unreachable=%d frozen=%d seconds=%.3f", found,
             gc.get_freeze_count(), time.perf_counter() - started)
    return found
