"""FIX 4.4 session-layer conformance: the scenarios in tests/conformance/*.fix.

These scenarios re-state, in our own format, the standard FIX 4.4 session-layer
acceptance scenarios (logon, sequence numbers, gap fills, resends, rejects,
heartbeats, logout, ...). The gateway runs once per module as a subprocess
with examples/acceptance.toml, exactly as an acceptance run starts it, and the
scenarios run one after another against that one process; before each one a
probe connection is opened and closed without a word.

Scenario line format (see tests/conformance/README.md):

    # comment                      blank lines and comments are skipped
    connect [N]                    open client connection N (default 1)
    close [N]                      the client closes connection N
    send[N] 35=0|34=2|...          8=FIX.4.4 (unless the line starts with 8=), 9= and 10=
                                   are added unless the line gives them
    raw[N] 35=0|8=FIX.4.4|...      exactly these bytes (| is SOH)
    expect[N] 8=FIX.4.4|9=51|...   read one message and compare it field by field
    expect-disconnect[N]           the gateway closes within 10 s, sending nothing more
    sleep S                        pause S seconds

{NOW}, {NOW+n}, {NOW-n} in send/raw lines are UTC YYYYMMDD-HH:MM:SS (no
milliseconds). In expect lines {TS} (or *) on 52/122 means a millisecond
UTCTimestamp, on 60/42 a seconds-only one; 10=* means any three-digit checksum
(and the checksum must still be right); * on any other tag means any value.

Run one scenario against a gateway that is already running:

    python -m tests.test_conformance --port 5001 tests/conformance/<name>.fix
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = Path(__file__).resolve().parent / "conformance"
CONFIG = ROOT / "examples" / "acceptance.toml"
# The same scenarios against the venue's order-entry application (see `answers_match`).
ORDERS_CONFIG = ROOT / "examples" / "acceptance-orders.toml"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.fix"))

SOH = "\x01"
STEP_TIMEOUT = 12.0  # seconds an expect waits for a message
DISCONNECT_TIMEOUT = 10.0  # seconds the gateway has to close a connection
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0

# Widths of timestamp placeholders, for computing an expected BodyLength.
_MS_TIMESTAMP_TAGS = {52: 21, 122: 21}  # YYYYMMDD-HH:MM:SS.sss (ours)
_S_TIMESTAMP_TAGS = {60: 17, 42: 17}  # YYYYMMDD-HH:MM:SS (echoed from the client)
_MS_TIMESTAMP = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}\.\d{3}")
_S_TIMESTAMP = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}")
_NOW = re.compile(r"\{NOW(?:([+-])(\d+))?\}")
_STEP = re.compile(
    r"^(?P<kind>connect|close|send|raw|expect-disconnect|expect|sleep)"
    r"(?:\[(?P<conn>\d+)\])?(?:\s+(?P<arg>.*))?$"
)
_WILDCARDS = ("*", "{TS}")


class ScenarioError(Exception):
    """The scenario file itself is wrong (a bug in the test, not the gateway)."""


class ConformanceFailure(AssertionError):
    """The gateway did not behave as the scenario says."""


# --- scenario files ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    lineno: int
    text: str
    kind: str
    conn: int
    arg: str


def parse_scenario(path: Path) -> list[Step]:
    steps: list[Step] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _STEP.match(text)
        if match is None:
            raise ScenarioError(f"{path.name}:{lineno}: cannot parse {text!r}")
        kind, conn_text, arg = match["kind"], match["conn"], (match["arg"] or "").strip()
        if kind in ("connect", "close") and arg:
            if conn_text is not None or not arg.isdigit():
                raise ScenarioError(f"{path.name}:{lineno}: bad connection id in {text!r}")
            conn_text, arg = arg, ""
        conn = int(conn_text) if conn_text is not None else 1
        if kind in ("send", "raw", "expect") and not arg:
            raise ScenarioError(f"{path.name}:{lineno}: {kind} needs a message")
        if kind == "sleep":
            try:
                float(arg)
            except ValueError:
                raise ScenarioError(f"{path.name}:{lineno}: sleep needs seconds") from None
        if kind == "expect":
            try:
                expected_fields(arg)
            except ScenarioError as exc:
                raise ScenarioError(f"{path.name}:{lineno}: {exc}") from None
        steps.append(Step(lineno, text, kind, conn, arg))
    if not steps:
        raise ScenarioError(f"{path.name}: no steps")
    return steps


def utc_text(offset: int = 0) -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(time.time() + offset))


def substitute_time(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        sign, amount = match.group(1), match.group(2)
        offset = 0 if amount is None else int(amount) * (1 if sign == "+" else -1)
        return utc_text(offset)

    return _NOW.sub(one, text)


def split_fields(text: str) -> list[str]:
    """'a=1|b=2|' -> ['a=1', 'b=2'] (the trailing separator is optional)."""
    if text.endswith("|"):
        text = text[:-1]
    return text.split("|")


def checksum(data: bytes) -> int:
    return sum(data) % 256


def build_outgoing(text: str) -> bytes:
    """A `send` line as bytes: add 8=, 9=, 10= unless the line gives them."""
    fields = split_fields(substitute_time(text))
    if not fields[0].startswith("8="):
        fields.insert(0, "8=FIX.4.4")
    has_trailer = fields[-1].startswith("10=")
    if not any(f.startswith("9=") for f in fields):
        body = fields[1:-1] if has_trailer else fields[1:]
        length = sum(len(f) + 1 for f in body)
        fields.insert(1, f"9={length}")
    data = SOH.join(fields).encode("latin-1") + b"\x01"
    if not has_trailer:
        data += b"10=%03d\x01" % checksum(data)
    return data


def build_raw(text: str) -> bytes:
    return substitute_time(text).replace("|", SOH).encode("latin-1")


def expected_fields(text: str) -> list[tuple[str, str]]:
    """The fields an `expect` line describes, with 8=, 9= and 10= filled in.

    A missing 9= is computed from the line (placeholders at their real widths);
    a given one must agree with that computation whenever it can be made.
    """
    pairs: list[tuple[str, str]] = []
    for item in split_fields(text):
        tag, sep, value = item.partition("=")
        if not sep:
            raise ScenarioError(f"field without '=' in expect line: {item!r}")
        pairs.append((tag, value))
    if pairs[0][0] != "8":
        pairs.insert(0, ("8", "FIX.4.4"))
    if pairs[-1][0] != "10":
        pairs.append(("10", "*"))
    explicit = next((v for t, v in pairs if t == "9"), None)
    body = [(t, v) for t, v in pairs[1:-1] if t != "9"]
    length: int | None = 0
    for tag, value in body:
        width = len(value)
        if value in _WILDCARDS:
            tag_n = int(tag) if tag.lstrip("-").isdigit() else -1
            width = _MS_TIMESTAMP_TAGS.get(tag_n) or _S_TIMESTAMP_TAGS.get(tag_n) or -1
            if width < 0:
                length = None
                break
        assert length is not None
        length += len(tag) + 1 + width + 1
    if explicit is None:
        if length is None:
            raise ScenarioError(f"cannot compute BodyLength for {text!r}; give 9=")
        pairs.insert(1, ("9", str(length)))
    elif length is not None and explicit != str(length):
        raise ScenarioError(f"9={explicit} in the scenario, but the line's body is {length}")
    return pairs


def show(data: bytes | str) -> str:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return text.replace(SOH, "|")


def compare(expected: list[tuple[str, str]], received: bytes) -> list[str]:
    """Differences between an expected message and a received one ([] if equal).

    As the acceptance harness does: same number of fields, same tags in the
    same order, equal values except for placeholders. On top of that the
    received BodyLength and CheckSum must be the real ones.
    """
    problems: list[str] = []
    text = received.decode("latin-1")
    got = [f.partition("=") for f in split_fields(text.replace(SOH, "|"))]
    if len(got) != len(expected):
        problems.append(f"number of fields differs: expected {len(expected)}, got {len(got)}")
    for i, ((exp_tag, exp_value), (tag, _, value)) in enumerate(zip(expected, got, strict=False)):
        if tag != exp_tag:
            problems.append(f"field {i + 1}: expected tag {exp_tag}, found tag {tag}")
            continue
        if not value_matches(exp_tag, exp_value, value):
            problems.append(f"field {i + 1}: {exp_tag}={value} does not match "
                            f"{exp_tag}={exp_value}")
    problems += framing_problems(received)
    return problems


def value_matches(tag: str, expected: str, value: str) -> bool:
    if expected not in _WILDCARDS:
        return value == expected
    tag_n = int(tag) if tag.lstrip("-").isdigit() else -1
    if tag_n in _MS_TIMESTAMP_TAGS:
        return _MS_TIMESTAMP.fullmatch(value) is not None
    if tag_n in _S_TIMESTAMP_TAGS:
        return _S_TIMESTAMP.fullmatch(value) is not None
    if tag_n == 10:
        return re.fullmatch(r"\d{3}", value) is not None
    return True


def framing_problems(received: bytes) -> list[str]:
    problems: list[str] = []
    head = re.match(rb"8=[^\x01]*\x019=(\d+)\x01", received)
    trailer = received.rfind(b"\x0110=")
    if head is None or trailer < 0:
        return ["message does not start 8=...|9=...| or has no 10= trailer"]
    real = trailer + 1 - head.end()
    if int(head.group(1)) != real:
        problems.append(f"BodyLength says {int(head.group(1))}, the real body is {real} bytes")
    value = received[trailer + 4 : -1]
    if value.isdigit() and int(value) != checksum(received[: trailer + 1]):
        problems.append(f"CheckSum says {value.decode()}, the real one is "
                        f"{checksum(received[: trailer + 1]):03d}")
    return problems


# --- running a scenario -----------------------------------------------------------------


class Disconnected(Exception):
    pass


class ClientConnection:
    """One client socket, read the way the acceptance harness reads."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT)
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise
        except ConnectionResetError as exc:
            raise Disconnected("connection reset by the gateway (RST)") from exc
        if not data:
            raise Disconnected("the gateway closed the connection")
        self.buf += data

    def _read_until(self, marker: bytes, start: int, deadline: float) -> int:
        while True:
            index = self.buf.find(marker, start)
            if index >= 0:
                return index
            self._fill(deadline)

    def read_message(self, timeout: float) -> bytes:
        """Up to "<SOH>9=", the length, that many bytes, then the 10= field."""
        deadline = time.monotonic() + timeout
        mark = self._read_until(b"\x019=", 0, deadline)
        soh = self._read_until(b"\x01", mark + 3, deadline)
        length_text = self.buf[mark + 3 : soh]
        if not length_text.isdigit():
            raise ConformanceFailure(f"unreadable BodyLength in {show(self.buf[: soh + 1])}")
        body_end = soh + 1 + int(length_text)
        while len(self.buf) < body_end:
            self._fill(deadline)
        end = self._read_until(b"\x01", body_end, deadline) + 1
        message, self.buf = self.buf[:end], self.buf[end:]
        return message

    def wait_disconnect(self, timeout: float) -> None:
        """Readable within `timeout`, then EOF: nothing more may arrive."""
        if self.buf:
            raise ConformanceFailure(f"expected disconnection, got data: {show(self.buf)}")
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise ConformanceFailure(
                f"connection still open {timeout:.0f} s later (expected the gateway to close it)"
            )
        try:
            self.sock.settimeout(1.0)
            data = self.sock.recv(65536)
        except ConnectionResetError:
            raise ConformanceFailure(
                "connection reset (RST) instead of an orderly close"
            ) from None
        if data:
            raise ConformanceFailure(f"expected disconnection, got data: {show(data)}")


# Header fields an answer shares with the echo: all but 9 and 10 (lengths differ) and
# PossResend(97), which the echo copies from the order and an answer does not carry.
_HEADER_TAGS = frozenset({"8", "34", "43", "49", "50", "52", "56", "57", "115",
                          "116", "122", "128", "129", "142", "143", "144", "145"})
# What the order-entry application answers where the echo application echoes.
_ORDER_ENTRY_ANSWER = {"D": "8", "d": "j"}


def parse_fields(received: bytes) -> list[tuple[str, str]]:
    text = received.decode("latin-1").replace(SOH, "|")
    return [(tag, value) for tag, _, value in (f.partition("=") for f in split_fields(text))]


def answers_match(expected: list[tuple[str, str]], received: bytes) -> list[str]:
    """Differences between an expected echo and the order-entry application's answer.

    Where the echo application echoes a NewOrderSingle, the order-entry application
    answers with exactly one ExecutionReport for the same ClOrdID (the next `expect`
    catches a second one); where it echoes a SecurityDefinition, with a
    BusinessMessageReject. The header must be the echo's, field for field (resent
    answers keep 43=Y and 122), then 35 is the answer's type.
    """
    echoed = dict(expected)
    answer = _ORDER_ENTRY_ANSWER[echoed["35"]]
    got = parse_fields(received)
    want_header = [(t, v) for t, v in expected if t in _HEADER_TAGS]
    got_header = [(t, v) for t, v in got if t in _HEADER_TAGS]
    problems: list[str] = []
    if [t for t, _ in got_header] != [t for t, _ in want_header]:
        problems.append(f"header tags {[t for t, _ in got_header]}, expected "
                        f"{[t for t, _ in want_header]}")
    else:
        problems += [f"{t}={v} does not match {t}={w}" for (t, w), (_, v)
                     in zip(want_header, got_header, strict=True) if not value_matches(t, w, v)]
    fields = dict(got)
    if fields.get("35") != answer:
        problems.append(f"35={fields.get('35')}, expected 35={answer}")
    elif answer == "8":
        if fields.get("11") != echoed.get("11"):
            problems.append(f"ClOrdID 11={fields.get('11')}, expected 11={echoed.get('11')}")
        if "150" not in fields or "39" not in fields:
            problems.append("ExecutionReport without ExecType(150) or OrdStatus(39)")
    elif fields.get("372") != echoed["35"]:
        problems.append(f"RefMsgType 372={fields.get('372')}, expected 372={echoed['35']}")
    return problems + framing_problems(received)


@dataclass
class ScenarioRun:
    path: Path
    port: int
    order_entry: bool = False  # the gateway runs the order-entry application
    conns: dict[int, ClientConnection] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    def run(self) -> None:
        steps = parse_scenario(self.path)
        try:
            for step in steps:
                self.transcript.append(f"line {step.lineno}: {step.text}")
                try:
                    self.step(step)
                except ConformanceFailure as exc:
                    raise ConformanceFailure(self.report(step, str(exc))) from None
                except Disconnected as exc:
                    raise ConformanceFailure(self.report(step, str(exc))) from None
        finally:
            for conn in self.conns.values():
                conn.close()
            self.conns.clear()

    def report(self, step: Step, detail: str) -> str:
        tail = "\n  ".join(self.transcript[-16:])
        return (f"{self.path.name}:{step.lineno}: {detail}\n"
                f"transcript (last steps):\n  {tail}")

    def conn(self, step: Step) -> ClientConnection:
        conn = self.conns.get(step.conn)
        if conn is None:
            raise ScenarioError(f"{self.path.name}:{step.lineno}: connection {step.conn} "
                                "is not open")
        return conn

    def step(self, step: Step) -> None:
        kind = step.kind
        if kind == "connect":
            if step.conn in self.conns:
                raise ScenarioError(f"{self.path.name}:{step.lineno}: already connected")
            self.conns[step.conn] = ClientConnection(self.port)
        elif kind == "close":
            self.conn(step).close()
            del self.conns[step.conn]
        elif kind in ("send", "raw"):
            data = build_outgoing(step.arg) if kind == "send" else build_raw(step.arg)
            self.transcript.append(f"  sent[{step.conn}]     {show(data)}")
            try:
                self.conn(step).send(data)
            except OSError as exc:
                raise ConformanceFailure(f"could not send ({exc}): {show(data)}") from None
        elif kind == "expect":
            expected = expected_fields(step.arg)
            expected_text = "|".join(f"{t}={v}" for t, v in expected) + "|"
            try:
                received = self.conn(step).read_message(STEP_TIMEOUT)
            except TimeoutError:
                raise ConformanceFailure(
                    f"no message within {STEP_TIMEOUT:.0f} s\n"
                    f"  expected: {expected_text}\n"
                    f"  received: nothing (buffered: {show(self.conn(step).buf) or '-'})"
                ) from None
            except Disconnected as exc:
                raise ConformanceFailure(
                    f"{exc}, expected data\n  expected: {expected_text}\n  received: EOF"
                ) from None
            self.transcript.append(f"  received[{step.conn}] {show(received)}")
            if self.order_entry and dict(expected).get("35") in _ORDER_ENTRY_ANSWER:
                problems = answers_match(expected, received)
            else:
                problems = compare(expected, received)
            if problems:
                raise ConformanceFailure(
                    "message differs: " + "; ".join(problems)
                    + f"\n  expected: {expected_text}\n  received: {show(received)}"
                )
        elif kind == "expect-disconnect":
            self.conn(step).wait_disconnect(DISCONNECT_TIMEOUT)
            self.conn(step).close()
            del self.conns[step.conn]
        elif kind == "sleep":
            time.sleep(float(step.arg))


def probe(port: int) -> None:
    """Connect and close at once without sending anything, as the harness does."""
    for _ in range(30):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        except OSError:
            time.sleep(1.0)
            continue
        sock.close()
        return
    raise ConformanceFailure(f"cannot connect to the gateway on port {port}")


# --- the gateway under test ---------------------------------------------------------------


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    order_entry: bool

    def log_tail(self, chars: int = 3000) -> str:
        text = self.stderr.read_text(encoding="utf-8", errors="replace")
        return text[-chars:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["echo", "orders"])
def gateway(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway as an acceptance run starts it, once with each application."""
    order_entry = request.param == "orders"
    config = ORDERS_CONFIG if order_entry else CONFIG
    work = tmp_path_factory.mktemp("conformance")
    port = free_port()
    env = dict(os.environ, FIXGW_LISTEN__PORT=str(port),
               FIXGW_STORE__DATA_DIR=str(work / "data"))
    stdout, stderr = work / "stdout.log", work / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)],
            cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        )
    gw = GatewayProcess(process, port, stdout, stderr, order_entry)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "fixgw listening on" not in stdout.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"gateway exited with {process.returncode} at start-up:\n"
                            f"{gw.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gateway did not report 'fixgw listening on' within "
                            f"{STARTUP_TIMEOUT:.0f} s:\n{gw.log_tail()}")
            time.sleep(0.05)
        yield gw
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.unit
def test_scenarios_are_present_and_well_formed() -> None:
    assert len(SCENARIOS) >= 50, f"only {len(SCENARIOS)} scenarios in {SCENARIO_DIR}"
    for path in SCENARIOS:
        steps = parse_scenario(path)
        assert steps[0].kind == "connect", f"{path.name} must start with connect"


def _wire(text: str) -> bytes:
    """A message as the gateway would send it: | as SOH, with a correct 10=."""
    data = text.replace("|", SOH).encode()
    return data + b"10=%03d\x01" % checksum(data)


@pytest.mark.unit
def test_comparator_is_as_strict_as_the_acceptance_harness() -> None:
    expected = expected_fields("8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52={TS}|56=TW44|10=*|")
    good = "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=20260101-00:00:00.000|56=TW44|"
    assert compare(expected, _wire(good)) == []
    # Seconds-only SendingTime: wrong BodyLength for the harness and wrong pattern.
    no_ms = "8=FIX.4.4|9=47|35=0|34=2|49=ISLD|52=20260101-00:00:00|56=TW44|"
    assert len(compare(expected, _wire(no_ms))) == 2
    extra = good.replace("56=TW44|", "56=TW44|58=x|").replace("9=51", "9=56")
    assert "number of fields" in compare(expected, _wire(extra))[0]
    lying = good.replace("9=51", "9=50")
    assert any("BodyLength" in p for p in compare(expected, _wire(lying)))
    bad_sum = _wire(good)[:-4] + b"000\x01"
    assert any("CheckSum" in p for p in compare(expected, bad_sum))


@pytest.mark.unit
def test_outgoing_lines_get_begin_string_length_and_checksum() -> None:
    data = build_outgoing("35=0|34=2|49=TW44|52=20260101-00:00:00|56=ISLD|")
    assert data.startswith(b"8=FIX.4.4\x019=47\x0135=0\x01")
    assert data.endswith(b"\x0110=%03d\x01" % checksum(data[: data.rindex(b"10=")]))
    kept = build_outgoing("8=FIX.4.4|9=30|35=0|34=2|10=256|")
    assert kept == b"8=FIX.4.4\x019=30\x0135=0\x0134=2\x0110=256\x01"
    with pytest.raises(ScenarioError):
        expected_fields("8=FIX.4.4|9=50|35=0|34=2|49=ISLD|52={TS}|56=TW44|10=*|")


# Waits out a HeartBtInt and then a TestRequest's before the disconnect it checks.
SLOW_SCENARIOS = {"test_request_sent_when_peer_silent_then_disconnect.fix"}


@pytest.mark.parametrize("scenario", [
    pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW_SCENARIOS else [])
    for p in SCENARIOS
])
def test_scenario(gateway: GatewayProcess, scenario: Path) -> None:
    if gateway.process.poll() is not None:
        pytest.fail(f"gateway is no longer running (exit {gateway.process.returncode}):\n"
                    f"{gateway.log_tail()}")
    probe(gateway.port)
    ScenarioRun(scenario, gateway.port, gateway.order_entry).run()


def test_gateway_stops_cleanly_on_sigterm(gateway: GatewayProcess) -> None:
    """After all the scenarios: SIGTERM, and the gateway exits with status 0."""
    assert gateway.process.poll() is None, f"gateway already exited:\n{gateway.log_tail()}"
    gateway.process.send_signal(signal.SIGTERM)
    try:
        code = gateway.process.wait(SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gateway still running {SHUTDOWN_TIMEOUT:.0f} s after SIGTERM")
    assert code == 0, f"gateway exited with {code}:\n{gateway.log_tail()}"


# --- command line: one scenario against a running gateway ---------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run conformance scenarios against a gateway")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--orders", action="store_true",
                        help="the gateway runs the order-entry application "
                             "(examples/acceptance-orders.toml)")
    parser.add_argument("scenarios", nargs="+", type=Path)
    args = parser.parse_args(argv)
    failed = 0
    for path in args.scenarios:
        probe(args.port)
        try:
            ScenarioRun(path, args.port, args.orders).run()
        except (ConformanceFailure, ScenarioError) as exc:
            failed += 1
            print(f"FAIL {path.name}\n{exc}\n", flush=True)
        else:
            print(f"ok   {path.name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
