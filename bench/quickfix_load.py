"""QuickFIX C++ under the same load as fixgw: the side-by-side of issue 3.

Builds `bench/quickfix_venue.cpp` (a QuickFIX 1.15 acceptor with FileStore,
validation against specs/FIX44.xml and a price-time book: see the file) with
g++ against Debian's libquickfix-dev, starts it pinned to the CPU the gateway
gets in `gateway_load.py`, and runs the same C load client, order streams and
two runs: max throughput (window 500) and latency at 10,000 orders/s. Then,
unless `--skip-fixgw`, the same runs against fixgw with its default
configuration, so both figures come from one sitting of this noisy machine.

    .venv/bin/python bench/quickfix_load.py            # ~1 minute
    .venv/bin/python bench/quickfix_load.py --quick    # ~30 s
    .venv/bin/python bench/quickfix_load.py --executor # + QuickFIX with no book
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gateway_load import (  # noqa: E402
    VENUE,
    Gateway,
    PipeTail,
    _pinned,
    build_client,
    cpu_plan,
    drop_copy_setup,
    make_streams,
    measure_venue,
    report_stalls,
    wait_for_line,
    write_config,
)
from bench.loop_probe import summarize  # noqa: E402

SOURCE = ROOT / "bench" / "quickfix_venue.cpp"


def build_venue(workdir: Path) -> Path:
    compiler = shutil.which("g++")
    if compiler is None or not Path("/usr/include/quickfix/Application.h").exists():
        raise SystemExit("needs g++ and QuickFIX's headers: apt-get install g++ libquickfix-dev "
                         "(make test installs them)")
    binary = workdir / "quickfix_venue"
    subprocess.run([compiler, "-O2", "-std=c++14", "-Wno-deprecated", "-o", str(binary),
                    str(SOURCE), "-lquickfix", "-lpthread"], check=True)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(workdir: Path, port: int, sessions: list[str]) -> Path:
    lines = [
        "[DEFAULT]", "ConnectionType=acceptor", f"SocketAcceptPort={port}",
        f"FileStorePath={workdir / 'qf-store'}", "StartTime=00:00:00", "EndTime=00:00:00",
        "UseDataDictionary=Y", f"DataDictionary={ROOT / 'specs' / 'FIX44.xml'}",
        "SocketNodelay=Y",
    ]
    for target in sessions:
        lines += ["[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={VENUE}",
                  f"TargetCompID={target}"]
    path = workdir / "quickfix.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_quickfix(binary: Path, workdir: Path, sessions: list[str], cpus: set[int] | None,
                 client: Path, streams: Any, n_orders: int, window: int, rate: float,
                 duration: float, executor: bool) -> None:
    port = free_port()
    shutil.rmtree(workdir / "qf-store", ignore_errors=True)
    mode = ["executor"] if executor else []
    venue = subprocess.Popen([str(binary), str(write_settings(workdir, port, sessions)), *mode],
                             cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=_pinned(cpus))
    try:
        wait_for_line(venue, r"quickfix venue listening on (\d+)", 30)
    except SystemExit:
        venue.kill()
        raise
    assert venue.stdout is not None and venue.stderr is not None
    out, err = PipeTail(venue.stdout.fileno()), PipeTail(venue.stderr.fileno())
    try:
        label = "quickfix executor" if executor else "quickfix"
        measure_venue(label, venue.pid, "127.0.0.1", port, cpus, client, streams, n_orders,
                      window, sessions, rate, int(rate * duration), duration,
                      loop_thread=False)
    finally:
        venue.terminate()
        venue.wait(timeout=30)
        out.text()
        if venue.returncode not in (0, -15):
            print(f"  !! quickfix venue exited {venue.returncode}: {err.text()[-2000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50,000 orders and 4 s at the rate")
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--skip-fixgw", action="store_true", help="QuickFIX only")
    ap.add_argument("--skip-quickfix", action="store_true", help="fixgw only")
    ap.add_argument("--executor", action="store_true",
                    help="also QuickFIX with no book: one ER Fill per order (like QuickFIX's "
                         "executor example, the issue's reference figure)")
    ap.add_argument("--probe", action="store_true",
                    help="run fixgw under bench/loop_probe.py and print what held its event "
                         "loop in the fixed-rate run")
    args = ap.parse_args()
    n_orders = 50_000 if args.quick else 200_000
    duration = 4.0 if args.quick else 15.0
    sessions = [f"CLIENT{i + 1}" for i in range(args.sessions)]
    window = 500 // len(sessions)
    venue_cpus, client_cpus, pin_text = cpu_plan(True)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    workdir = Path(tempfile.mkdtemp(prefix="fixgw-qf-"))
    try:
        client = build_client(workdir)
        if client is None:
            raise SystemExit("needs a C compiler for bench/load_client.c")
        binary = build_venue(workdir)
        print(f"config: {len(sessions)} sessions, pinning: {pin_text}, C load client, "
              f"same order streams as gateway_load.py", flush=True)

        def streams(tag: str, total: int, seed: int):  # type: ignore[no-untyped-def]
            return make_streams(workdir, tag, sessions, total, seed)

        if not args.skip_quickfix:
            for executor in ([False, True] if args.executor else [False]):
                run_quickfix(binary, workdir, sessions, venue_cpus, client, streams, n_orders,
                             window, args.rate, duration, executor)
        if not args.skip_fixgw:
            extra, _ = drop_copy_setup("stream", workdir, client_cpus)
            probe = workdir / "probe.json" if args.probe else None
            gw = Gateway(write_config(workdir, "interval", sessions, extra=extra), venue_cpus,
                         None, workdir, probe)
            spans: dict[str, tuple[float, float]] = {}
            try:
                spans = measure_venue("fixgw", gw.proc.pid, gw.host, gw.port, venue_cpus,
                                      client, streams, n_orders, window, sessions, args.rate,
                                      int(args.rate * duration), duration)
            finally:
                rc, err = gw.stop()
                report_stalls(err)
                if probe is not None and "paced" in spans:
                    for line in summarize(probe, spans["paced"]):
                        print(f"  {line}")
                if rc != 0:
                    print(f"  !! fixgw exited {rc}: {err[-3000:]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
