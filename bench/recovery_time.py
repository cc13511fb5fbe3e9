"""How long a start spends rebuilding the engine: the whole journal vs a snapshot.

A journal of N commands from the engine benchmark's order mix
(`engine_throughput.generate`: 60% passive limit adds, 30% cancels, 10%
aggressive) is written in batches of 50 with commit marks, as the gateway
writes it. Then, each timed on its own:

- **replay**: the journal read and replayed into a fresh engine (what every
  start did before snapshots, and still does with `engine.snapshots = false`);
- **snapshot**: the journal archived and the engine's state saved
  (`EngineHistory.archive` + `save_snapshot`, fsyncs included): what the
  gateway spends after each end of day and at stop;
- **restore**: the snapshot read and the engine rebuilt from it (what a
  start now does, before replaying the short journal since the snapshot).

Run from the repository root:

    .venv/bin/python bench/recovery_time.py                 # 1,000,000 commands
    .venv/bin/python bench/recovery_time.py --count 200000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_throughput import INSTRUMENTS, generate, tune_gc  # noqa: E402

from engine.engine import MatchingEngine  # noqa: E402
from engine.history import EngineHistory  # noqa: E402
from engine.journal import CommandJournal  # noqa: E402
from engine.snapshot import restore, take  # noqa: E402
from engine.types import StpMode  # noqa: E402
from session_store import FsyncPolicy  # noqa: E402

EOD = 21 * 3600 * 10**9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    args = ap.parse_args()
    commands = generate(args.count)
    tune_gc()
    workdir = Path(tempfile.mkdtemp(prefix="fixgw-recovery-"))
    try:
        history = EngineHistory(workdir / "engine")
        history.directory.mkdir(parents=True)
        journal = CommandJournal(history.journal_path, fsync=FsyncPolicy.NONE)
        for i, command in enumerate(commands):
            journal.append(command)
            if i % 50 == 49:
                journal.mark_committed()
                journal.flush()
        journal.mark_committed()
        journal.flush()
        size = history.journal_path.stat().st_size
        journal.close()

        started = time.perf_counter()
        journal = CommandJournal(history.journal_path, fsync=FsyncPolicy.NONE)
        engine = MatchingEngine(INSTRUMENTS, StpMode.CANCEL_RESTING, end_of_day=EOD)
        for entry in journal.replay():
            engine.process(entry.command)
        replay = time.perf_counter() - started

        started = time.perf_counter()
        number = history.archive(journal)
        history.save_snapshot(number, take(engine))
        snapshot = time.perf_counter() - started
        journal.close()

        started = time.perf_counter()
        loaded = history.load_snapshot()
        assert loaded is not None
        restored = restore(loaded[1], INSTRUMENTS, StpMode.CANCEL_RESTING, EOD)
        restore_s = time.perf_counter() - started
        assert restored.state_hash() == engine.state_hash()
        live = len(engine.open_orders())
        print(f"# fixgw recovery time, {args.count:,} commands, journal {size / 1e6:.1f} MB, "
              f"{live:,} live orders and {len(loaded[1]['orders']):,} orders kept at the end, "
              f"snapshot {history.snapshot_path.stat().st_size / 1e6:.1f} MB", flush=True)
        print(f"replay the whole journal: {replay:.2f} s", flush=True)
        print(f"archive the journal and save a snapshot: {snapshot:.2f} s", flush=True)
        print(f"start from the snapshot (read + restore): {restore_s:.2f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
