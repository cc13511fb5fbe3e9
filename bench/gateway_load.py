"""Gateway load benchmark: the whole gateway over TCP on loopback, as a client measures it.

The script starts `fixgw serve` as a subprocess (its own temporary config and
data directory, the default durability `fsync = "interval"`, two sessions,
eight instruments), waits for "fixgw listening on ...", and drives it with a
load client that logs on (141=Y) and pipelines NewOrderSingles and cancels.
For each ClOrdID it times the FIRST answer: the ack (ExecutionReport 150=0),
or a fill / cancel / reject ER, or an OrderCancelReject, whichever comes first;
from just before the bytes are handed to send() to the read that returns the
answer.

Figures (one line each):

(a) max throughput: N orders (default 200,000 over 2 sessions) pipelined with
    at most W (default 500, split evenly over the sessions) unanswered;
    answered orders per second from the first send to the last answer, and
    p50/p99/p99.9 of the latency during that run (which, at saturation, is
    mostly queueing: about W / throughput).
(b) latency at a fixed offered rate: 10,000 orders/s for 15 s, paced on a
    schedule (each order sent at its due time, sessions in turn), window 500
    per session, which is never reached unless the gateway stalls (counted as
    "window stalls"); p50/p99/p99.9/max.

The order mix (per session, repeating in cycles of four messages; symbol,
side, account and quantities drawn from a seeded PRNG):

    1. Limit Day order 1..10 ticks behind the mid (passive; cancelled later)
    2. Limit Day order 1..3 ticks behind the mid (passive; left to be filled)
    3. Limit IOC order crossing the mid by 3 ticks, twice the size (aggressive:
       fills against 1. and 2., the rest is cancelled -- two ERs per fill)
    4. Cancel of the order of type 1 sent 250 cycles earlier (an ER 150=4,
       or an OrderCancelReject 35=9 when it has already been filled)

i.e. 50% resting limit orders, 25% marketable IOC, 25% cancels, over eight
symbols, both sides, 64 accounts (self-trade prevention is on, so a few trades
become STP cancels). Every resting order is either filled by the aggressive
flow (which outweighs the near-touch passive flow) or cancelled 1,000 messages
later, so the books stay small however long it runs. All of them count as
"orders" in the figures.

The load client is C (bench/load_client.c, compiled here with `cc -O2`): a
Python client on the other core would spend several microseconds per message
on its own and could not show whether a 100,000/s target is met. Messages are
pre-encoded (seqnums known in advance); SendingTime/TransactTime are patched
in per millisecond with the checksum adjusted arithmetically; batches go out
in one send(); answers are found by byte search for 35=, 11= and 150=. Its own
ceiling is measured against a trivial C responder ("load client alone"), and
the ceiling of a bare uvloop Python server (no FIX logic, one template ER per
order) is printed too. Without a C compiler a slower Python client is used,
and its ceiling is printed the same way.

CPU pinning: with two or more CPUs the gateway (and its fsync thread) runs on
one CPU and the client (and this script) on another, via sched_setaffinity.
The client sleeps in ppoll when idle, so that other processes on a shared
machine are not pushed onto the gateway's CPU (--spin: busy-poll instead).
Each run also reports the event-loop thread's CPU time per order, which
stays meaningful when other processes share the machine.

Run from the repository root:

    .venv/bin/python bench/gateway_load.py                   # full run (~1.5 minutes)
    .venv/bin/python bench/gateway_load.py --quick           # ~15 s
    .venv/bin/python bench/gateway_load.py --fsync batch     # compare durability policies
    .venv/bin/python bench/gateway_load.py --profile         # + py-spy profile (cProfile
                                                             #   with --profile cprofile)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SOH = b"\x01"
TS_SLOT = b"00000000-00:00:00.000"  # 21 bytes, filled in at send time
VENUE = "FIXGW"
SPIN = False  # --spin: the C client busy-polls instead of sleeping in ppoll when idle

# symbol, tick size in cents, mid price in cents
INSTRUMENTS = [
    ("ACME", 1, 10_000), ("GLOBEX", 5, 25_000), ("INITECH", 1, 4_250),
    ("HOOLI", 1, 71_000), ("UMBRELLA", 1, 1_999), ("STARK", 1, 33_300),
    ("WAYNE", 1, 12_075), ("TYRELL", 1, 5_005),
]
PACED_WINDOW = 500  # unanswered orders per session allowed in the fixed-rate run
CANCEL_LAG_CYCLES = 250  # a type-1 order is cancelled 250 cycles (1,000 messages) later


# --- the order streams -----------------------------------------------------------------


@dataclass
class Stream:
    """One session's messages: logon, orders..., logout, framed, with timestamp slots."""

    sender: str  # the client's CompID
    prefix: str  # ClOrdID prefix; ClOrdID = prefix + 8-digit order index
    frames: list[bytes] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)  # 0 logon, 1 order, 2 logout
    slots: list[tuple[int, int]] = field(default_factory=list)
    base_sums: list[int] = field(default_factory=list)
    mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, kind: int, msg_type: str, fields: str) -> None:
        seq = len(self.frames) + 1
        body = (f"35={msg_type}\x0134={seq}\x0149={self.sender}\x0152={TS_SLOT.decode()}"
                f"\x0156={VENUE}\x01{fields}").encode()
        head = b"8=FIX.4.4\x019=%d\x01" % len(body)
        frame = head + body + b"10=000\x01"
        s1 = frame.index(b"\x0152=") + 4
        s2 = frame.find(b"\x0160=" + TS_SLOT)
        s2 = s2 + 4 if s2 >= 0 else 0xFFFF
        slot_sum = sum(TS_SLOT) * (2 if s2 != 0xFFFF else 1)
        self.frames.append(frame)
        self.kinds.append(kind)
        self.slots.append((s1, s2))
        self.base_sums.append((sum(frame[:-7]) - slot_sum) % 256)

    @property
    def orders(self) -> int:
        return self.kinds.count(1)

    def write(self, path: Path) -> None:
        index = bytearray()
        off = 0
        for frame, kind, (s1, s2), base in zip(self.frames, self.kinds, self.slots,
                                               self.base_sums, strict=True):
            index += struct.pack("<B3xIIHHI", kind, off, len(frame), s1, s2, base)
            off += len(frame)
        prefix = self.prefix.encode()
        with open(path, "wb") as f:
            f.write(b"FXLD" + struct.pack("<II", len(self.frames), len(prefix)) + prefix)
            f.write(struct.pack("<Q", off))
            f.write(index)
            for frame in self.frames:
                f.write(frame)


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def make_stream(sender: str, prefix: str, n_orders: int, seed: int) -> Stream:
    """Logon, `n_orders` order-entry messages in the documented mix, logout."""
    rng = random.Random(seed)
    st = Stream(sender, prefix)
    st.add(0, "A", "98=0\x01108=30\x01141=Y\x01")
    placeholder = TS_SLOT.decode()
    cancellable: list[tuple[str, str, str, int]] = []  # type-1 orders: id, symbol, side, qty
    for i in range(n_orders):
        cl = f"{prefix}{i:08d}"
        slot = i % 4
        symbol, tick, mid = INSTRUMENTS[rng.randrange(len(INSTRUMENTS))]
        side = rng.choice("12")
        account = f"AC{rng.randrange(64):02d}"
        if slot == 3 and len(cancellable) > CANCEL_LAG_CYCLES:
            orig, c_symbol, c_side, c_qty = cancellable[-CANCEL_LAG_CYCLES - 1]
            st.add(1, "F", f"11={cl}\x0141={orig}\x0138={c_qty}\x0154={c_side}\x0155={c_symbol}"
                           f"\x0160={placeholder}\x01")
            st.mix["cancel"] += 1
            continue
        if slot in (0, 1):
            ticks = rng.randint(1, 10) if slot == 0 else rng.randint(1, 3)
            qty = 100 * (rng.randint(1, 5) if slot == 0 else rng.randint(1, 3))
            px = mid - ticks * tick if side == "1" else mid + ticks * tick
            tif = "0"
            st.mix["limit day (passive)"] += 1
            if slot == 0:
                cancellable.append((cl, symbol, side, qty))
        else:  # slot 2, and slot 3 until there is an order old enough to cancel
            qty = 100 * rng.randint(2, 6)
            px = mid + 3 * tick if side == "1" else mid - 3 * tick
            tif = "3"
            st.mix["limit IOC (aggressive)"] += 1
        st.add(1, "D", f"1={account}\x0111={cl}\x0138={qty}\x0140=2\x0144={_price(px)}"
                       f"\x0154={side}\x0155={symbol}\x0159={tif}\x0160={placeholder}\x01")
    st.add(2, "5", "")
    return st


# --- processes, CPUs -------------------------------------------------------------------


def cpu_plan(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """(gateway CPUs, client CPUs, description)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None, "none (no sched_setaffinity)"
    if not pin:
        return None, None, "none (--no-pin)"
    if len(cpus) < 2:
        return None, None, f"none (only CPU {cpus[0]} available: client and gateway share it)"
    gw, client = {cpus[0]}, {cpus[1]}
    return gw, client, f"gateway on CPU {cpus[0]}, load client on CPU {cpus[1]}"


def _pinned(cpus: set[int] | None):
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def proc_cpu_seconds(pid: int, tid: int | None = None, kernel_only: bool = False) -> float:
    """utime + stime (or stime alone) so far of a process (all its threads), or of one
    of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        ticks = int(parts[12]) + (0 if kernel_only else int(parts[11]))
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_busy_seconds(cpus: set[int] | None) -> float:
    """Busy (non-idle) seconds so far of the given CPUs, from /proc/stat."""
    if not cpus:
        return float("nan")
    busy = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *vals = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                    v = [int(x) for x in vals]
                    busy += sum(v[:8]) - v[3] - v[4]  # all but idle and iowait
    except OSError:
        return float("nan")
    return busy / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """What a venue (process, event-loop thread) and its CPU did over an interval.

    `loop_thread`: the work runs on the process's main thread (fixgw's event
    loop); otherwise (QuickFIX's acceptor thread) per-order CPU is the process's.
    """

    def __init__(self, pid: int, cpus: set[int] | None, label: str = "gateway",
                 loop_thread: bool = True) -> None:
        self.pid, self.cpus, self.label, self.loop_thread = pid, cpus, label, loop_thread
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float, float]:
        return (time.monotonic(), proc_cpu_seconds(self.pid), proc_cpu_seconds(self.pid, self.pid),
                cpu_busy_seconds(self.cpus), proc_cpu_seconds(self.pid, self.pid, True))

    def report(self, answered: int) -> str:
        t1, p1, m1, c1, k1 = self._read()
        t0, p0, m0, c0, k0 = self.start
        wall = max(t1 - t0, 1e-9)
        text = f"{self.label} CPU {100 * (p1 - p0) / wall:.0f}% of one core"
        if self.loop_thread:
            text += (f" (event-loop thread {100 * (m1 - m0) / wall:.0f}%, of it in the kernel "
                     f"{100 * (k1 - k0) / wall:.0f}%)")
        if self.cpus:
            others = (c1 - c0) - (p1 - p0)
            text += f", other work on its CPU {100 * max(others, 0) / wall:.0f}%"
        used, who = (m1 - m0, "loop thread") if self.loop_thread else (p1 - p0, "process")
        if answered and used > 0:
            per = used / answered * 1e6
            text += (f"; {who} {per:.1f} us CPU per order = at most "
                     f"{1e6 / per:,.0f} orders/s on a core of its own")
        return text


def build_kind() -> str:
    """Pure Python, or which modules `make compile` built with mypyc (they shadow the .py)."""
    found = [p for folder in ("engine", "fix_gateway") for p in (ROOT / folder).rglob("*.so")]
    compiled = sorted(str(p.relative_to(ROOT)).split(".")[0] for p in found)
    return f"mypyc-compiled {', '.join(compiled)}" if compiled else "pure Python"


def wait_for_line(proc: subprocess.Popen, pattern: str, timeout: float) -> re.Match[str]:
    """Read the child's stdout (raw fd, no buffering) until a line matches `pattern`."""
    import select

    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            m = re.search(pattern.encode(), buf)
            if m:
                return re.search(pattern, m.group(0).decode())  # type: ignore[return-value]
        elif proc.poll() is not None:
            break
    err = ""
    if proc.poll() is not None and proc.stderr is not None:
        err = proc.stderr.read()
    raise SystemExit(f"did not see {pattern!r} within {timeout:.0f} s (exit {proc.poll()}); "
                     f"stdout={buf!r} stderr tail={err[-2000:]!r}")


def build_client(workdir: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    exe = workdir / "load_client"
    subprocess.run([cc, "-O2", "-o", str(exe), str(ROOT / "bench" / "load_client.c")],
                   check=True)
    return exe


# --- the gateway under test --------------------------------------------------------------


def write_config(workdir: Path, fsync: str, sessions: list[str], metrics: bool = True,
                 message_log: bool = False, extra: list[str] | None = None) -> Path:
    lines = [
        'log_level = "WARNING"',
        "[listen]", 'host = "127.0.0.1"', "port = 0",
        "[store]", f'data_dir = "{workdir / "data"}"', f'fsync = "{fsync}"',
        "fsync_interval = 0.05",
        "[server]", 'application = "orders"',
        "[metrics]", f"enabled = {str(metrics).lower()}", "port = 0",
        "[logging]", f"messages = {str(message_log).lower()}",
    ]
    for symbol, tick, _ in INSTRUMENTS:
        lines += ["[[instruments]]", f'symbol = "{symbol}"', f'tick_size = "{_price(tick)}"']
    for target in sessions:
        lines += ["[[sessions]]", f'SenderCompID = "{VENUE}"', f'TargetCompID = "{target}"']
    lines += extra or []
    path = workdir / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def drop_copy_setup(mode: str, workdir: Path, cpus: set[int] | None
                    ) -> tuple[list[str], subprocess.Popen | None]:
    """Config lines for a --drop-copy mode, and the MQTT broker it needs, if any."""
    if mode == "off":
        return ["[drop_copy]", "enabled = false"], None
    if mode == "stream":
        return [], None
    lines = ["[[sessions]]", f'SenderCompID = "{VENUE}"', 'TargetCompID = "DC1"',
             'Role = "drop-copy"', 'DropCopyDelivery = "live"']
    if mode == "fix":
        return lines, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if mosquitto:
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        cmd = [mosquitto, "-c", str(conf)]
    else:
        cmd = [str(VENV_BIN / "fixgw"), "dropcopy", "broker", "--port", str(port)]
    broker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=_pinned(cpus))
    time.sleep(1.0)
    mqtt = ["[drop_copy.mqtt]", "enabled = true", 'host = "127.0.0.1"', f"port = {port}",
            f"in_process = {'false' if mode == 'mqtt-sidecar' else 'true'}"]
    return [*lines, *mqtt], broker


def start_publisher(mode: str, config: Path, cpus: set[int] | None) -> subprocess.Popen | None:
    """`fixgw dropcopy publish` as its own process, for --drop-copy mqtt-sidecar."""
    if mode != "mqtt-sidecar":
        return None
    return subprocess.Popen([str(VENV_BIN / "fixgw"), "dropcopy", "publish", "--config",
                             str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_pinned(cpus))


def start_dropcopy_consumer(mode: str, gw: Gateway, cpus: set[int] | None
                            ) -> subprocess.Popen | None:
    if mode not in ("fix", "mqtt", "mqtt-sidecar"):
        return None
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "dropcopy_consumer.py"), gw.host, str(gw.port),
         "DC1", VENUE], stdout=subprocess.PIPE, text=True, preexec_fn=_pinned(cpus))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


class PipeTail:
    """Reads a child's pipe on a thread, keeping the last `keep` bytes.

    A pipe nobody reads fills up (64 KiB) and then blocks the child at its next
    write: a gateway logging surveillance alerts to stderr would stop trading
    in the middle of a run.
    """

    def __init__(self, fd: int, keep: int = 256 * 1024) -> None:
        self._fd, self._keep = fd, keep
        self._data = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while chunk := os.read(self._fd, 65536):
            self._data += chunk
            if len(self._data) > 2 * self._keep:
                del self._data[:-self._keep]

    def text(self, timeout: float = 10.0) -> str:
        """Everything kept, once the child has closed the pipe (or `timeout` passed)."""
        self._thread.join(timeout)
        return self._data[-self._keep:].decode(errors="replace")


class Gateway:
    def __init__(self, config: Path, cpus: set[int] | None, profile: str | None,
                 workdir: Path, probe: Path | None = None) -> None:
        self.profile = profile
        self.probe = probe
        self.profile_out = workdir / ("profile.pstats" if profile == "cprofile"
                                      else "profile.raw")
        serve = ["serve", "--config", str(config)]
        if profile == "cprofile":
            code = ("import cProfile, sys\nfrom fix_gateway.cli import main\n"
                    "p = cProfile.Profile()\np.enable()\ntry:\n    rc = main(sys.argv[1:])\n"
                    f"finally:\n    p.disable()\n    p.dump_stats({str(self.profile_out)!r})\n"
                    "sys.exit(rc)\n")
            cmd = [sys.executable, "-c", code, *serve]
        elif probe is not None:
            cmd = [sys.executable, str(ROOT / "bench" / "loop_probe.py"), str(probe), *serve]
        else:  # py-spy, if asked, samples it from its own process on the client CPU.
            # This checkout's fixgw (the venv's `fixgw` script may be another's editable
            # install): `-m` from the repository root.
            cmd = [sys.executable, "-m", "fix_gateway.cli", *serve]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=_pinned(cpus))
        m = wait_for_line(self.proc, r"fixgw listening on (\S+):(\d+)", 60)
        self.host, self.port = m.group(1), int(m.group(2))
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = PipeTail(self.proc.stdout.fileno())
        self.err = PipeTail(self.proc.stderr.fileno())
        self.spy: subprocess.Popen | None = None

    def start_pyspy(self) -> None:
        self.spy = subprocess.Popen(
            [str(VENV_BIN / "py-spy"), "record", "--pid", str(self.proc.pid), "--rate", "1000",
             "--nonblocking", "--threads", "--format", "raw", "--full-filenames",
             "-o", str(self.profile_out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)  # let it attach

    def stop_pyspy(self) -> str:
        if self.spy is None:
            return ""
        self.spy.send_signal(signal.SIGINT)
        out, _ = self.spy.communicate(timeout=60)
        return out

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.text()
        return self.proc.returncode, self.err.text()


# --- running the client ------------------------------------------------------------------


def run_client(client: Path | None, host: str, port: int, mode: str, window: int,
               streams: list[Path], rate: float = 0.0, timeout: float = 20.0,
               stream_objs: list[Stream] | None = None) -> dict:
    if client is None:
        assert stream_objs is not None
        return python_client(host, port, mode, window, stream_objs, rate, timeout)
    cmd = [str(client), "run", host, str(port), mode, str(window), str(timeout)]
    if mode == "paced":
        cmd.append(str(rate))
    cmd += [str(s) for s in streams]
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, LOAD_CLIENT_SPIN="1" if SPIN else "0"))
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"load client failed (exit {res.returncode}): {res.stderr.strip()}")
    out = json.loads(lines[-1])
    if out["failed"]:
        print(f"  !! load client: {out['error']}", flush=True)
    return out


def make_streams(workdir: Path, tag: str, sessions: list[str], total: int,
                 seed: int) -> tuple[list[Path], list[Stream]]:
    per = total // len(sessions)
    paths, objs = [], []
    for i, sender in enumerate(sessions):
        st = make_stream(sender, f"{tag}{i}-", per, seed * 100 + i)
        path = workdir / f"stream-{tag}{i}.bin"
        st.write(path)
        paths.append(path)
        objs.append(st)
    return paths, objs


# --- a Python fallback client (used only when no C compiler is found) --------------------


def python_client(host: str, port: int, mode: str, window: int, streams: list[Stream],  # noqa: C901
                  rate: float, timeout: float) -> dict:
    """The same protocol as load_client.c, in Python (a few us per message of its own)."""
    from fix_gateway.utc_time import format_timestamp

    socks = []
    for _ in streams:
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)

    def stamped(st: Stream, i: int) -> bytes:
        frame = bytearray(st.frames[i])
        ts = format_timestamp(time.time())
        s1, s2 = st.slots[i]
        frame[s1:s1 + 21] = ts
        total = st.base_sums[i] + sum(ts)
        if s2 != 0xFFFF:
            frame[s2:s2 + 21] = ts
            total += sum(ts)
        frame[-4:-1] = b"%03d" % (total % 256)
        return bytes(frame)

    for s, st in zip(socks, streams, strict=True):
        s.sendall(stamped(st, 0))
    for s in socks:
        data = b""
        while b"\x0135=A\x01" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("logon refused")
            data += chunk
    for s in socks:
        s.setblocking(False)
    n = [st.orders for st in streams]
    nxt, acked = [0] * len(streams), [0] * len(streams)
    sent_ns = [[0] * k for k in n]
    lat: list[int] = []
    seen = [bytearray(k) for k in n]
    bufs = [b""] * len(streams)
    prefixes = [st.prefix.encode() for st in streams]
    counts: dict[str, int] = defaultdict(int)
    total = sum(n)
    t0 = time.perf_counter_ns()
    last = t0
    period = 1e9 / rate if rate else 0
    g = 0
    while sum(acked) < total:
        now = time.perf_counter_ns()
        if mode == "paced":
            while g < total and t0 + int(g * period) <= now:
                k = g % len(streams)
                if nxt[k] - acked[k] >= window:
                    if counts["stalled_at"] != g + 1:  # count each delayed order once
                        counts["window_stalls"] += 1
                        counts["stalled_at"] = g + 1
                    break
                frame = stamped(streams[k], 1 + nxt[k])
                sent_ns[k][nxt[k]] = time.perf_counter_ns()
                socks[k].setblocking(True)
                socks[k].sendall(frame)
                socks[k].setblocking(False)
                nxt[k] += 1
                g += 1
        else:
            for k, st in enumerate(streams):
                room = min(window - (nxt[k] - acked[k]), n[k] - nxt[k])
                if room > 0:
                    batch = b"".join(stamped(st, 1 + j) for j in range(nxt[k], nxt[k] + room))
                    ts = time.perf_counter_ns()
                    for j in range(nxt[k], nxt[k] + room):
                        sent_ns[k][j] = ts
                    socks[k].setblocking(True)
                    socks[k].sendall(batch)
                    socks[k].setblocking(False)
                    nxt[k] += room
        for k, s in enumerate(socks):
            try:
                data = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit("gateway closed the connection")
            t = time.perf_counter_ns()
            buf = bufs[k] + data
            pos = 0
            while True:
                end = buf.find(b"\x0110=", pos)
                if end < 0 or end + 8 > len(buf):
                    break
                msg = buf[pos:end]
                pos = end + 8
                mt = msg[msg.find(b"\x0135=") + 4:msg.find(b"\x0135=") + 6]
                if mt not in (b"8\x01", b"9\x01"):
                    if mt[:1] in (b"3", b"j", b"5"):
                        raise SystemExit(f"gateway answered {msg!r}")
                    continue
                q = msg.find(b"\x0111=" + prefixes[k])
                if q < 0:
                    continue
                q += 4 + len(prefixes[k])
                idx = int(msg[q:q + 8])
                if not seen[k][idx]:
                    seen[k][idx] = 1
                    acked[k] += 1
                    lat.append(t - sent_ns[k][idx])
                    last = t
            bufs[k] = buf[pos:]
        if time.perf_counter_ns() - last > timeout * 1e9:
            raise SystemExit(f"no answer for {timeout} s")
    for k, s in enumerate(socks):
        s.setblocking(True)
        s.sendall(stamped(streams[k], len(streams[k].frames) - 1))
        s.close()
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * (len(lat) - 1) + 0.5))] / 1000

    elapsed = (last - t0) / 1e9
    return {"orders": total, "answered": len(lat), "elapsed_s": elapsed,
            "orders_per_s": len(lat) / elapsed, "p50_us": pct(50), "p90_us": pct(90),
            "p99_us": pct(99), "p999_us": pct(99.9), "max_us": lat[-1] / 1000,
            "window_stalls": counts["window_stalls"], "late_sends": 0, "failed": False,
            "error": "", "execution_reports": 0, "fills": 0, "cancel_rejects": 0}


# --- the bare uvloop responder (the Python I/O ceiling) -----------------------------------


def python_responder(port: int) -> None:
    """A uvloop server with no FIX logic: one template ER per order, ClOrdID copied."""
    import asyncio

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from fix_gateway.utc_time import format_timestamp

    class Responder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport
            self.buf = b""
            self.seq = 0

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            out = []
            pos = 0
            ts = format_timestamp(time.time())
            while True:
                end = buf.find(b"\x0110=", pos)
                if end < 0 or end + 8 > len(buf):
                    break
                msg = buf[pos:end]
                pos = end + 8
                i = msg.find(b"\x0135=") + 4
                mt = msg[i:i + 1]
                self.seq += 1
                if mt == b"D" or mt == b"F":
                    a = msg.find(b"\x0111=") + 4
                    cl = msg[a:msg.find(SOH, a)]
                    body = (b"35=8\x0134=%d\x0149=FIXGW\x0152=%s\x0156=C\x011=ACC\x016=0\x01"
                            b"11=%s\x0114=0\x0117=E%d\x0137=O%d\x0138=100\x0139=0\x0140=2\x01"
                            b"44=100.00\x0154=1\x0155=ACME\x0159=0\x0160=%s\x01150=0\x01"
                            b"151=100\x01" % (self.seq, ts, cl, self.seq, self.seq, ts))
                elif mt == b"A":
                    body = b"35=A\x0134=1\x0149=FIXGW\x0152=%s\x0156=C\x0198=0\x01108=30\x01" % ts
                elif mt == b"5":
                    body = b"35=5\x0134=%d\x0149=FIXGW\x0152=%s\x0156=C\x01" % (self.seq, ts)
                else:
                    continue
                head = b"8=FIX.4.4\x019=%d\x01" % len(body)
                frame = head + body
                out.append(frame + b"10=%03d\x01" % (sum(frame) % 256))
            self.buf = buf[pos:]
            if out:
                self.t.write(b"".join(out))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Responder, "127.0.0.1", port)
        print(f"responder listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}",
              flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


@contextlib.contextmanager
def responder(kind: str, client: Path | None, cpus: set[int] | None):
    if kind == "c":
        assert client is not None
        cmd = [str(client), "respond", "0"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "_respond", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_pinned(cpus))
    try:
        m = wait_for_line(proc, r"responder listening on (\S+):(\d+)", 30)
        yield m.group(1), int(m.group(2))
    finally:
        proc.terminate()
        proc.wait()


# --- profiles ------------------------------------------------------------------------------


def _short(path: str) -> str:
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root):]
    m = re.search(r"(?:site-packages|python3\.\d+)/(.*)", path)
    return m.group(1) if m else path


def print_cprofile(path: Path, top: int) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((f"{_short(file)}:{line}({name})", nc, tt, ct))
    for title, key in (("cumulative", 3), ("own", 2)):
        print(f"\ngateway profile (cProfile), top {top} by {title} time "
              f"(total {total:.2f} s; cProfile inflates call-heavy code):")
        print(f"  {'cum %':>6} {'own %':>6} {'calls':>10}  function")
        for name, nc, tt, ct in sorted(rows, key=lambda r: -r[key])[:top]:
            print(f"  {100 * ct / total:6.1f} {100 * tt / total:6.1f} {nc:10d}  {name}")


def print_pyspy(path: Path, top: int, pid: int) -> None:
    """Own and cumulative (inclusive) sample shares per function of the event-loop thread.

    py-spy's raw output (with --threads) is one line per distinct stack,
    "thread (TID): NAME;frame;frame... COUNT"; the event loop runs in MainThread. Samples in other
    threads (the background fsync thread) are summarised on one line.
    """
    own: dict[str, int] = defaultdict(int)
    cum: dict[str, int] = defaultdict(int)
    main_total = other_total = 0
    other: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        names = []
        for frame in frames[1:]:
            m = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", frame)
            names.append(f"{m.group(1)} ({_short(m.group(2))})" if m else frame)
        if not (thread.endswith(": MainThread") or thread == f"thread ({pid})"):
            other_total += count
            other[names[-1] if names else thread] += count
            continue
        main_total += count
        if not names:
            continue
        own[names[-1]] += count
        for name in set(names):
            cum[name] += count
    if not main_total:
        print("\npy-spy: no samples of the event-loop thread")
        return
    print(f"\ngateway profile (py-spy --nonblocking, event-loop thread: {main_total} samples "
          f"at 1 kHz; 'Runner.run' own time is the loop's C code: epoll, socket reads/writes, "
          f"callbacks):")
    for title, table in (("cumulative", cum), ("own", own)):
        print(f"\n  top {top} by {title} share of the event-loop thread's samples:")
        print(f"  {'cum %':>6} {'own %':>6}  function")
        for name, _ in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {100 * cum[name] / main_total:6.1f} {100 * own[name] / main_total:6.1f}  "
                  f"{name}")
    if other_total:
        busiest = ", ".join(f"{k} {v}" for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:3])
        print(f"\n  other threads (fsync): {other_total} samples "
              f"({100 * other_total / main_total:.0f}% of the loop thread's; by leaf: {busiest})")


# --- main -----------------------------------------------------------------------------------


def fmt_lat(r: dict, keys: tuple[str, ...]) -> str:
    return "/".join(f"{r[k]:,.0f}" for k in keys)


def describe_first_answers(r: dict) -> str:
    if "first_new" not in r:
        return ""
    return (f"first answers: {r['first_new']:,} acks, {r['first_fill']:,} fills, "
            f"{r['first_cancel']:,} cancels, {r['first_cxl_reject']:,} cancel rejects, "
            f"{r['first_reject']:,} rejects; {r['execution_reports']:,} ERs in all, "
            f"{r['fills']:,} fill ERs")


def report_stalls(err: str) -> None:
    """Print what fixgw said about a held-up event loop (server.stall_seconds); the
    stacks while it was held are in the file each line names."""
    for line in err.splitlines():
        if "event=loop_stalled" in line:
            print(f"  !! {line}")


def measure_venue(label: str, pid: int, host: str, port: int, cpus: set[int] | None,
                  client: Path | None, streams: Callable[[str, int, int], tuple[list[Path],
                                                                        list[Stream]]],
                  n_orders: int, window: int, sessions: list[str], rate: float,
                  paced_orders: int, duration: float, loop_thread: bool = True
                  ) -> dict[str, tuple[float, float]]:
    """The two runs every venue gets (a warm-up first): max throughput with `window`
    orders unanswered per session, then latency at a fixed `rate`. Returns each run's
    time.monotonic() span ("max", "paced"), for bench/loop_probe.py."""
    spans = {}
    w_paths, w_objs = streams("W", max(10_000, n_orders // 10), 2)
    run_client(client, host, port, "max", window, w_paths, stream_objs=w_objs)
    t_paths, t_objs = streams("T", n_orders, 1)
    meter = CpuMeter(pid, cpus, label, loop_thread)
    t0 = time.monotonic()
    r = run_client(client, host, port, "max", window, t_paths, stream_objs=t_objs)
    spans["max"] = (t0, time.monotonic())
    cpu = meter.report(r["answered"])
    print(f"{label} orders/s (window {window * len(sessions)}, {r['orders']:,} orders):"
          f" {r['orders_per_s']:,.0f}")
    print(f"{label} ack latency p50/p99/p99.9 during that run: "
          f"{fmt_lat(r, ('p50_us', 'p99_us', 'p999_us'))} us "
          + (f"({describe_first_answers(r)})" if "first_new" in r else ""))
    print(f"  ({cpu})", flush=True)

    l_paths, l_objs = streams("L", paced_orders, 3)
    meter = CpuMeter(pid, cpus, label, loop_thread)
    t0 = time.monotonic()
    r = run_client(client, host, port, "paced", PACED_WINDOW, l_paths, rate=rate,
                   stream_objs=l_objs)
    spans["paced"] = (t0, time.monotonic())
    cpu = meter.report(r["answered"])
    print(f"{label} ack latency p50/p99/p99.9/max at {rate:,.0f} orders/s "
          f"({duration:.0f} s, {r['answered']:,} orders): "
          f"{fmt_lat(r, ('p50_us', 'p99_us', 'p999_us', 'max_us'))} us")
    print(f"  (achieved {r['answered'] / r['elapsed_s']:,.0f} orders/s, window "
          f"{PACED_WINDOW}/session, window stalls {r['window_stalls']}, sends >1 ms late "
          f"{r['late_sends']}, p90 {r['p90_us']:,.0f} us)")
    if (r["answered"] < 0.97 * rate * r["elapsed_s"] or r["window_stalls"]
            or r["late_sends"] > 0.01 * r["answered"]):
        print(f"  (the {label} did not keep up with the offered rate: these latencies are "
              "mostly queueing)")
    print(f"  ({cpu})", flush=True)
    return spans


def main(argv: list[str] | None = None) -> int:  # noqa: C901
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (~15 s)")
    ap.add_argument("--fsync", choices=["batch", "interval", "none"], default="interval")
    ap.add_argument("--profile", nargs="?", const="pyspy", choices=["pyspy", "cprofile"],
                    help="also profile the gateway during a max-throughput run "
                         "(py-spy by default)")
    ap.add_argument("--profile-paced", action="store_true",
                    help="profile the fixed-rate run (--rate, --duration) instead")
    ap.add_argument("--orders", type=int, help="orders for the throughput run (200,000)")
    ap.add_argument("--window", type=int, default=500, help="max unanswered orders, all "
                    "sessions together, for the throughput run (500)")
    ap.add_argument("--rate", type=float, default=10_000, help="offered rate for the latency "
                    "run, orders/s (10,000)")
    ap.add_argument("--duration", type=float, help="seconds of the latency run (15)")
    ap.add_argument("--sessions", type=int, default=2, help="FIX sessions (2)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    ap.add_argument("--python-client", action="store_true",
                    help="use the (slower) Python client even if a C compiler is present")
    ap.add_argument("--skip-ceilings", action="store_true",
                    help="skip the client-alone and bare-uvloop reference runs")
    ap.add_argument("--spin", action="store_true",
                    help="the C client busy-polls its sockets (best on a quiet machine with a "
                         "core for it; by default it sleeps in ppoll when idle)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--drop-copy", choices=["off", "stream", "fix", "mqtt", "mqtt-sidecar"],
                    default="stream",
                    help="off: no drop-copy stream; stream: the stream only (the default"
                         " configuration); fix: also a FIX drop-copy session logged on and"
                         " reading; mqtt: fix plus the MQTT feed published from a thread of the"
                         " gateway to a broker (Mosquitto if installed, else the embedded one)"
                         " on the client CPU; mqtt-sidecar: the same, published by"
                         " `fixgw dropcopy publish` as its own process on the client CPU")
    ap.add_argument("--extra-config", action="append", default=[], metavar="TOML",
                    help="TOML appended to the gateway's config (repeatable)")
    ap.add_argument("--metrics", choices=["on", "off"], default="on",
                    help="Prometheus metrics and their per-batch timing (on)")
    ap.add_argument("--message-log", choices=["on", "off"], default="off",
                    help="per-session FIX message logs (off)")
    ap.add_argument("--probe", action="store_true",
                    help="run fixgw under bench/loop_probe.py and print what held its event "
                         "loop (collections, slow callbacks, late timer) in the fixed-rate run")
    args = ap.parse_args(argv)
    global SPIN
    SPIN = args.spin

    n_orders = args.orders or (50_000 if args.quick else 200_000)
    duration = args.duration or (4.0 if args.quick else 15.0)
    paced_orders = int(args.rate * duration)
    sessions = [f"CLIENT{i + 1}" for i in range(args.sessions)]
    window = max(1, args.window // len(sessions))  # per session
    gw_cpus, client_cpus, pin_text = cpu_plan(not args.no_pin)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)

    workdir = Path(tempfile.mkdtemp(prefix="fixgw-load-"))
    try:
        client = None if args.python_client else build_client(workdir)
        try:
            import uvloop
            uv = f"yes ({uvloop.__version__})"
        except ImportError:
            uv = "no"
        print(f"config: metrics {args.metrics}, message log {args.message_log}, "
              f"build: {build_kind()}")
        print(f"config: fsync={args.fsync} (interval 50 ms), {len(sessions)} sessions, "
              f"{len(INSTRUMENTS)} symbols, Python {platform.python_version()} "
              f"({platform.python_implementation()}), uvloop {uv}, "
              f"{os.cpu_count()} CPUs, pinning: {pin_text}")
        how = ("busy-polls" if args.spin else "sleeps in ppoll when idle") if client else ""
        kind = f"C (bench/load_client.c, cc -O2; {how})" if client else "Python"
        print(f"config: load client {kind},"
              f" data dir {workdir}")

        def streams(tag: str, total: int, seed: int) -> tuple[list[Path], list[Stream]]:
            return make_streams(workdir, tag, sessions, total, seed)

        t_paths, t_objs = streams("T", n_orders, 1)
        mix = defaultdict(int)
        for st in t_objs:
            for k, v in st.mix.items():
                mix[k] += v
        total_mix = sum(mix.values())
        print("order mix: " + ", ".join(f"{100 * v / total_mix:.0f}% {k}"
                                         for k, v in sorted(mix.items(), key=lambda kv: -kv[1]))
              + f"; {len(INSTRUMENTS)} symbols, both sides, 64 accounts, ClOrdIDs unique")

        # Reference ceilings: the client alone, and a bare uvloop server.
        if not args.skip_ceilings:
            if client is not None:
                with responder("c", client, gw_cpus) as (host, port):
                    r = run_client(client, host, port, "max", window, t_paths,
                                   stream_objs=t_objs)
                print(f"load client alone (C responder, no FIX logic) orders/s (window "
                      f"{window * len(sessions)}, {r['answered']:,} orders): "
                      f"{r['orders_per_s']:,.0f}", flush=True)
            with responder("python", client, gw_cpus) as (host, port):
                r = run_client(client, host, port, "max", window, t_paths, stream_objs=t_objs)
                print(f"bare uvloop Python responder (template ER, no FIX logic) orders/s "
                      f"(window {window * len(sessions)}, {r['answered']:,} orders): "
                      f"{r['orders_per_s']:,.0f}"
                      + ("" if client else "  <- also the ceiling of the Python load client"),
                      flush=True)
                # The latency floor of this machine: the same pacing, no FIX logic.
                f_paths, f_objs = streams("F", paced_orders, 5)
                r = run_client(client, host, port, "paced", PACED_WINDOW, f_paths,
                               rate=args.rate, stream_objs=f_objs)
                print(f"bare uvloop Python responder ack latency p50/p99/p99.9/max at "
                      f"{args.rate:,.0f} orders/s: "
                      f"{fmt_lat(r, ('p50_us', 'p99_us', 'p999_us', 'max_us'))} us", flush=True)

        # The gateway.
        extra, side = drop_copy_setup(args.drop_copy, workdir, client_cpus)
        config = write_config(workdir, args.fsync, sessions, args.metrics == "on",
                              args.message_log == "on", extra + args.extra_config)
        probe = workdir / "probe.json" if args.probe else None
        gw = Gateway(config, gw_cpus, None, workdir, probe)
        consumer = start_dropcopy_consumer(args.drop_copy, gw, client_cpus)
        publisher = start_publisher(args.drop_copy, config, client_cpus)
        print(f"config: drop copy {args.drop_copy}"
              + (f" ({side.args[0]} broker)" if side is not None else ""), flush=True)
        spans: dict[str, tuple[float, float]] = {}
        try:
            spans = measure_venue("gateway", gw.proc.pid, gw.host, gw.port, gw_cpus, client,
                                  streams, n_orders, window, sessions, args.rate, paced_orders,
                                  duration)
        finally:
            rc, err = gw.stop()
            report_stalls(err)
            if probe is not None and "paced" in spans:
                from bench.loop_probe import summarize
                for line in summarize(probe, spans["paced"]):
                    print(f"  {line}")
            if rc != 0:
                print(f"  !! gateway exited {rc}: {err[-2000:]}")
            elif err.strip():
                print(f"  gateway stderr: {err.strip()[-1000:]}")
            if consumer is not None:
                consumer.terminate()
                out, _ = consumer.communicate(timeout=10)
                print(f"  drop-copy session received: {(out or '?').split()[-1]} copies",
                      flush=True)
            if publisher is not None:
                publisher.terminate()
                publisher.wait(10)
            if args.drop_copy.startswith("mqtt"):
                acked = (workdir / "data" / "dropcopy" / "mqtt.ack")
                print(f"  MQTT publisher acknowledged up to drop-copy seq "
                      f"{acked.read_text().strip() if acked.exists() else 0}", flush=True)
            if side is not None:
                side.kill()

        if args.profile:
            shutil.rmtree(workdir / "data", ignore_errors=True)
            gw = Gateway(config, gw_cpus, args.profile, workdir)
            try:
                w_paths, w_objs = streams("W", max(10_000, n_orders // 10), 2)
                run_client(client, gw.host, gw.port, "max", window, w_paths, stream_objs=w_objs)
                if args.profile == "pyspy":
                    gw.start_pyspy()
                if args.profile_paced:
                    p_paths, p_objs = streams("P", paced_orders, 4)
                    r = run_client(client, gw.host, gw.port, "paced", PACED_WINDOW, p_paths,
                                   rate=args.rate, stream_objs=p_objs)
                    print(f"\nunder the profiler ({args.profile}), paced at "
                          f"{args.rate:,.0f}/s: p50/p99 "
                          f"{fmt_lat(r, ('p50_us', 'p99_us'))} us")
                else:
                    p_paths, p_objs = streams("P", n_orders, 4)
                    r = run_client(client, gw.host, gw.port, "max", window, p_paths,
                                   stream_objs=p_objs)
                    print(f"\nunder the profiler ({args.profile}): {r['orders_per_s']:,.0f} "
                          f"orders/s ({r['orders']:,} orders, window {window * len(sessions)})")
                spy_out = gw.stop_pyspy() if args.profile == "pyspy" else ""
            finally:
                rc, err = gw.stop()
                if rc != 0:
                    print(f"  !! gateway exited {rc}: {err[-2000:]}")
            if args.profile == "cprofile":
                print_cprofile(gw.profile_out, 30)
            elif gw.profile_out.exists():
                print_pyspy(gw.profile_out, 30, gw.proc.pid)
            else:
                print(f"py-spy wrote nothing: {spy_out[-1000:]}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "_respond":
        sys.path.insert(0, str(ROOT))
        python_responder(int(sys.argv[2]))
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
