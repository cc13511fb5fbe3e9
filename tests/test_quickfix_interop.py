"""Interop: a real FIX engine (QuickFIX C++) logs on to fixgw as the client.

Every scenario is scripted in tests/interop/initiator.cpp, which this module
compiles once per run and drives over real TCP on 127.0.0.1 against a fixgw
subprocess. The initiator prints one line per callback and per QuickFIX log
entry (see its header comment); the tests assert on that conversation, from
the client engine's point of view.

Needs g++ and QuickFIX's headers and library (Debian: libquickfix-dev), which
`make test` installs. When they are missing the tests fail and say so; set
FIXGW_SKIP_INTEROP=1 to skip them instead.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "tests" / "interop" / "initiator.cpp"
DICTIONARY = REPO / "specs" / "FIX44.xml"
SKIP_VARIABLE = "FIXGW_SKIP_INTEROP"
INSTALL_HINT = (
    "run `make test` (it installs Debian's libquickfix-dev and g++), or "
    f"`apt-get install libquickfix-dev g++`; set {SKIP_VARIABLE}=1 to skip these tests"
)
# QuickFIX <= 1.15 (what Debian ships) uses dynamic exception specifications,
# which C++17 removed: build as C++14 and silence the deprecation noise.
CXXFLAGS = ["-std=c++14", "-O1", "-Wno-deprecated", "-Wno-deprecated-declarations"]
LIBS = ["-lquickfix", "-lpthread"]

GATEWAY_ID = "FIXGW"
HEARTBEAT = 1  # seconds; small so that heartbeats show up within a scenario
RUN_TIMEOUT = 20.0  # seconds for one initiator process (its own budget is 10)


# --- building the initiator --------------------------------------------------------


@pytest.fixture(scope="module")
def initiator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled QuickFIX initiator, built once per test run."""
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1: QuickFIX interop tests skipped")
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.fail(f"g++ not found; the QuickFIX interop test needs it: {INSTALL_HINT}",
                    pytrace=False)
    binary = tmp_path_factory.mktemp("quickfix-build") / "initiator"
    build = subprocess.run(
        [compiler, *CXXFLAGS, str(SOURCE), *LIBS, "-o", str(binary)],
        capture_output=True, text=True, timeout=180,
    )
    if build.returncode != 0:
        output = build.stderr + build.stdout
        missing = "quickfix/" in output and "No such file" in output
        if missing or "cannot find -lquickfix" in output:
            pytest.fail(f"QuickFIX C++ headers/library not installed: {INSTALL_HINT}\n"
                        f"{output[-2000:]}", pytrace=False)
        pytest.fail(f"building {SOURCE.name} failed:\n{output[-6000:]}", pytrace=False)
    return binary


# --- the gateway under test ----------------------------------------------------------


# The example instruments, plus QFX for the reports scenario alone.
INSTRUMENTS = (
    '\n[[instruments]]\nsymbol = "ACME"\n'
    '\n[[instruments]]\nsymbol = "GLOBEX"\ntick_size = "0.05"\n'
    '\n[[instruments]]\nsymbol = "QFX"\ntick_size = "0.01"\n'
)


class GatewayProcess:
    """`fixgw serve` in a subprocess with its own config, port and data directory."""

    def __init__(self, workdir: Path, data_dir: Path, clients: list[str]) -> None:
        self.workdir = workdir
        self.data_dir = data_dir
        self.clients = clients
        self.config = workdir / "gateway.toml"
        self.log = workdir / "gateway.log"
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, timeout: float = 15.0) -> None:
        sessions = "".join(
            f'\n[[sessions]]\nSenderCompID = "{GATEWAY_ID}"\nTargetCompID = "{client}"\n'
            for client in self.clients
        )
        self.config.write_text(
            'log_level = "INFO"\n\n[listen]\nhost = "127.0.0.1"\nport = 0\n\n'
            f"[store]\ndata_dir = {str(self.data_dir)!r}\n\n"
            f"[default]\nMinHeartBtInt = 1\n{sessions}{INSTRUMENTS}"
        )
        # FIXGW_* variables override the config file; keep a developer's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIXGW_")}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(self.config)],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        prefix = "fixgw listening on "
        if not line.startswith(prefix):
            self.process.kill()
            self.process.wait()
            pytest.fail(f"gateway did not start (stdout {line!r}):\n{self.log_tail()}",
                        pytrace=False)
        self.port = int(line[len(prefix):].strip().rsplit(":", 1)[1])

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"gateway ignored SIGTERM for {timeout}s:\n{self.log_tail()}",
                        pytrace=False)

    def stop(self) -> int:
        """SIGTERM and the exit status."""
        self.terminate()
        return self.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text() if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# One gateway for the module; every test has its own session on it, so no
# test depends on another's sequence numbers.
CLIENTS = ["QFBASIC", "QFORDER", "QFGAPCLIENT", "QFGAPAPP", "QFGAPGW", "QFRESET", "QFREPORTS"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("fixgw")
    gw = GatewayProcess(workdir, workdir / "data", CLIENTS)
    gw.start()
    yield gw
    status = gw.stop()
    assert status == 0, f"gateway exited {status} on SIGTERM:\n{gw.log_tail()}"


# --- the QuickFIX side -----------------------------------------------------------------


Fields = dict[int, str]


def parse_fix(raw: str) -> Fields:
    """'8=FIX.4.4|9=..|35=A|..' (SOH shown as '|') as {tag: value}, first wins."""
    fields: Fields = {}
    for item in raw.split("|"):
        tag, sep, value = item.partition("=")
        if sep and tag.isdigit():
            fields.setdefault(int(tag), value)
    return fields


@dataclass
class Conversation:
    """What one initiator run printed, with accessors for the assertions."""

    returncode: int
    lines: list[str]
    gateway_log: str = ""

    def __str__(self) -> str:
        return (f"initiator exit {self.returncode}; its output:\n" + "\n".join(self.lines)
                + f"\n--- gateway log (tail) ---\n{self.gateway_log}")

    def messages(self, kind: str, msg_type: str | None = None) -> list[Fields]:
        """FROM_ADMIN/TO_ADMIN/FROM_APP/TO_APP messages, optionally of one MsgType."""
        found = []
        for line in self.lines:
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] == kind and msg_type in (None, parts[1]):
                found.append(parse_fix(parts[2]))
        return found

    def wire(self, direction: str) -> list[Fields]:
        """Raw traffic as QuickFIX logged it: 'QF_IN' (from the gateway) or 'QF_OUT'."""
        prefix = direction + " "
        return [parse_fix(line[len(prefix):]) for line in self.lines if line.startswith(prefix)]

    def index(self, prefix: str, start: int = 0) -> int:
        """Position of the first line from `start` on that starts with `prefix`, or -1."""
        for i in range(start, len(self.lines)):
            if self.lines[i].startswith(prefix):
                return i
        return -1

    def final_seq(self) -> tuple[int, int]:
        """(next sender, next target) from the last SEQ line."""
        seq_lines = [line for line in self.lines if line.startswith("SEQ ")]
        assert seq_lines, self.log
        values = dict(item.split("=") for item in seq_lines[-1].split()[1:])
        return int(values["next_sender"]), int(values["next_target"])

    @property
    def log(self) -> str:
        """The whole conversation, for assertion messages (pytest would
        truncate the repr of a non-string message)."""
        return str(self)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and "PASS" in self.lines


class Client:
    """One QuickFIX initiator identity: settings file and a store kept across runs."""

    def __init__(self, binary: Path, workdir: Path, comp_id: str, gateway: GatewayProcess,
                 **settings: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.comp_id = comp_id
        self.gateway = gateway
        self.settings = settings
        self.store = workdir / "store"

    def write_settings(self) -> Path:
        """QuickFIX settings for the gateway's current port (it changes on restart)."""
        values = {
            "ConnectionType": "initiator",
            "BeginString": "FIX.4.4",
            "SenderCompID": self.comp_id,
            "TargetCompID": GATEWAY_ID,
            "SocketConnectHost": "127.0.0.1",
            "SocketConnectPort": str(self.gateway.port),
            "HeartBtInt": str(HEARTBEAT),
            "ReconnectInterval": "1",
            # StartTime == EndTime: a session that never ends.
            "StartTime": "00:00:00",
            "EndTime": "00:00:00",
            "FileStorePath": str(self.store),
            # Validate everything the gateway sends against the dictionary we
            # publish to client developers, as theirs will.
            "UseDataDictionary": "Y",
            "DataDictionary": str(DICTIONARY),
            **self.settings,
        }
        path = self.workdir / "initiator.cfg"
        path.write_text("[DEFAULT]\n" + "".join(f"{k}={v}\n" for k, v in values.items())
                        + "\n[SESSION]\n")
        return path

    def command(self, scenario: str, *options: str) -> list[str]:
        return [str(self.binary), str(self.write_settings()), scenario, *options]

    def run(self, scenario: str, *options: str) -> Conversation:
        try:
            done = subprocess.run(self.command(scenario, *options), capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            pytest.fail(f"initiator {scenario} hung for {RUN_TIMEOUT}s:\n{out}\n"
                        f"--- gateway log ---\n{self.gateway.log_tail()}", pytrace=False)
        lines = done.stdout.splitlines()
        if done.stderr:
            lines.append("STDERR " + done.stderr.strip())
        return Conversation(done.returncode, lines, self.gateway.log_tail())


ClientFactory = Callable[..., Client]


@pytest.fixture
def client(initiator: Path, gateway: GatewayProcess, tmp_path: Path) -> ClientFactory:
    """Factory: client("QFBASIC", ResetOnLogon="Y") -> Client with a fresh store."""

    def make(comp_id: str, **settings: str) -> Client:
        workdir = tmp_path / comp_id
        workdir.mkdir()
        return Client(initiator, workdir, comp_id, gateway, **settings)

    return make


# --- shared checks -------------------------------------------------------------------


def assert_clean(conv: Conversation) -> None:
    """The scenario passed and neither engine rejected anything of the other's."""
    assert conv.passed, conv.log
    assert conv.messages("FROM_ADMIN", "3") == [], f"gateway sent session Reject\n{conv}"
    assert conv.messages("TO_ADMIN", "3") == [], f"QuickFIX rejected a gateway message\n{conv}"
    inbound = conv.wire("QF_IN")
    assert all(m.get(8) == "FIX.4.4" and m.get(49) == GATEWAY_ID for m in inbound), conv.log


def assert_contiguous(conv: Conversation) -> None:
    """Without resends, the gateway's MsgSeqNums on the wire go up by exactly one."""
    seqs = [int(m[34]) for m in conv.wire("QF_IN")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gateway seqnums {seqs}\n{conv}"


def assert_clean_logout(conv: Conversation) -> None:
    """We asked to log out; the gateway answered with a Logout, then we disconnected."""
    ours = conv.index("TO_ADMIN 5 ")
    theirs = conv.index("FROM_ADMIN 5 ", ours)
    assert 0 <= ours < theirs < conv.index("LOGOUT", theirs), conv.log


# --- scenarios -----------------------------------------------------------------------


def test_basic_logon_heartbeat_test_request_logout(client: ClientFactory) -> None:
    conv = client("QFBASIC").run("basic")
    assert_clean(conv)

    # Logon answered with a Logon that echoes our HeartBtInt, seqnum 1 on both sides.
    (sent_logon,) = conv.messages("TO_ADMIN", "A")
    (logon,) = conv.messages("FROM_ADMIN", "A")
    assert sent_logon[34] == "1" and logon[34] == "1", conv.log
    assert logon[108] == str(HEARTBEAT) and logon[98] == "0", conv.log
    assert logon[49] == GATEWAY_ID and logon[56] == "QFBASIC", conv.log

    # A heartbeat of the gateway's own (HeartBtInt 1), then the TestRequest echo.
    heartbeats = conv.messages("FROM_ADMIN", "0")
    assert any(112 not in hb for hb in heartbeats), conv.log
    assert [hb[112] for hb in heartbeats if 112 in hb] == ["QF-TR-1"], conv.log

    assert_clean_logout(conv)
    assert_contiguous(conv)
    # Everything either side sent was processed: the stores agree.
    next_sender, next_target = conv.final_seq()
    assert next_target == int(conv.wire("QF_IN")[-1][34]) + 1, conv.log
    assert next_sender == int(conv.wire("QF_OUT")[-1][34]) + 1, conv.log


def test_new_order_single_is_answered_at_application_level(client: ClientFactory) -> None:
    conv = client("QFORDER").run("order")
    assert_clean(conv)
    (order,) = conv.messages("TO_APP", "D")
    (answer,) = conv.messages("FROM_APP")
    if answer[35] == "j":
        # No order handling attached yet: BusinessMessageReject naming the order.
        assert answer[45] == order[34] and answer[372] == "D", conv.log
        assert answer[379] == order[11], conv.log
        assert answer[380] == "3", conv  # Unsupported Message Type
    else:
        # Once orders are accepted: an ExecutionReport for this ClOrdID.
        assert answer[35] == "8" and answer[11] == order[11], conv.log
    assert_clean_logout(conv)
    assert_contiguous(conv)


def test_every_kind_of_report_passes_quickfix_validation(client: ClientFactory) -> None:
    """Stop, stop-limit, iceberg, GTD, FOK/IOC/market, replace, status, rejects and mass
    cancel: QuickFIX with its default validation takes every report (the scenario waits
    for each in fromApp) and rejects none."""
    conv = client("QFREPORTS").run("reports", "--timeout", "15")
    assert_clean(conv)
    reports = conv.messages("FROM_APP", "8")
    assert all(m[150] != "L" for m in reports), conv.log
    by_id = {}
    for m in reports:
        by_id.setdefault(m[11].rsplit("-", 1)[-1], []).append((m[150], m[39]))
    # A waiting stop is New (39=0, not A); its trigger a restatement (150=D), then fills.
    assert by_id["STOP"] == [("0", "0"), ("D", "0"), ("F", "2")], conv.log
    assert by_id["STOPLMT"] == [("0", "0"), ("D", "0"), ("F", "2")], conv.log
    triggered = [m for m in reports if m[150] == "D"]
    assert all(m[378] == "99" and m[58] == "stop triggered" for m in triggered), conv.log
    # Orders that end at once without a fill: one Canceled, no New.
    for name in ("FOK", "IOC", "MKT"):
        assert by_id[name] == [("4", "4")], conv.log
    (unknown,) = [m for m in reports if m[11].endswith("-NOPE")]
    assert (unknown[150], unknown[39], unknown[38]) == ("I", "8", "0"), conv.log
    assert_clean_logout(conv)
    assert_contiguous(conv)


@pytest.mark.slow
def test_gap_from_client_is_recovered_with_gap_fill(client: ClientFactory) -> None:
    qf = client("QFGAPCLIENT")
    first = qf.run("order")
    assert_clean(first)
    expected_by_gateway, _ = first.final_seq()

    # Second connection: our Logon jumps 5 numbers ahead of what the gateway expects.
    jump = expected_by_gateway + 5
    conv = qf.run("gap-client", "--next-sender-seq", str(jump))
    assert_clean(conv)
    (sent_logon,) = conv.messages("TO_ADMIN", "A")
    assert sent_logon[34] == str(jump), conv.log

    # The gateway accepts the Logon, then asks for everything from what it expected.
    (resend_request,) = conv.messages("FROM_ADMIN", "2")
    assert resend_request[7] == str(expected_by_gateway), conv.log
    assert resend_request[16] == "0", conv.log
    assert conv.index("FROM_ADMIN A ") < conv.index("FROM_ADMIN 2 "), conv.log

    # QuickFIX fills the whole range (it holds no app messages) with one GapFill...
    (gap_fill,) = conv.messages("TO_ADMIN", "4")
    assert gap_fill[123] == "Y" and gap_fill[43] == "Y", conv.log
    assert gap_fill[34] == str(expected_by_gateway), conv.log
    assert int(gap_fill[36]) > jump, conv.log

    # ...after which the gateway is back in sequence: it answers our TestRequest,
    # keeps heartbeating and logs out without complaint.
    assert [hb[112] for hb in conv.messages("FROM_ADMIN", "0") if 112 in hb] == [
        "QF-TR-GAP-CLIENT"
    ], conv.log
    assert_clean_logout(conv)
    (logout,) = conv.messages("FROM_ADMIN", "5")
    assert 58 not in logout, f"gateway's Logout carried an error: {logout.get(58)}\n{conv}"
    assert_contiguous(conv)


def test_gap_before_an_order_is_filled_and_the_order_acted_on_once(client: ClientFactory) -> None:
    conv = client("QFGAPAPP").run("gap-client-app")
    assert_clean(conv)
    original, resent = conv.messages("TO_APP", "D")
    assert 43 not in original and resent[43] == "Y", conv.log
    assert resent[34] == original[34] and resent[122] == original[52], conv.log

    # The order arrived too high: the gateway asked for the skipped numbers...
    (resend_request,) = conv.messages("FROM_ADMIN", "2")
    (sent_logon,) = conv.messages("TO_ADMIN", "A")
    assert resend_request[7] == str(int(sent_logon[34]) + 1), conv.log
    # ...QuickFIX gap-filled up to the order and sent the order again...
    (gap_fill,) = conv.messages("TO_ADMIN", "4")
    assert gap_fill[34] == resend_request[7] and gap_fill[36] == original[34], conv.log

    # ...and the gateway acted on the order exactly once (the PossDup copy of
    # a message it had already processed is a duplicate, not a new order).
    answers = [m for m in conv.messages("FROM_APP")
               if original[11] in (m.get(379), m.get(11))]
    assert len(answers) == 1, conv.log
    if answers[0][35] == "j":
        assert answers[0][45] == original[34], conv.log
    assert [hb[112] for hb in conv.messages("FROM_ADMIN", "0") if 112 in hb] == [
        "QF-TR-GAP-APP"
    ], conv.log
    assert_clean_logout(conv)
    assert_contiguous(conv)


def test_gap_from_gateway_is_filled_with_gap_fill_and_possdup_resend(client: ClientFactory) -> None:
    qf = client("QFGAPGW")
    first = qf.run("order")
    assert_clean(first)
    # The gateway's answer to the order: an application message, so a resend
    # must repeat it (PossDupFlag=Y) rather than gap-fill over it.
    (original,) = [m for m in first.wire("QF_IN") if m[35] in ("j", "8")]
    _, gateway_next = first.final_seq()

    # Second connection: we claim to have seen nothing of the gateway's, so
    # its Logon is too high and QuickFIX asks for everything from 1.
    conv = qf.run("gap-gateway", "--next-target-seq", "1")
    assert_clean(conv)
    (logon,) = conv.messages("FROM_ADMIN", "A")
    assert logon[34] == str(gateway_next), conv  # the gateway persisted its seqnum
    (resend_request,) = conv.messages("TO_ADMIN", "2")
    assert resend_request[7] == "1" and resend_request[16] == "0", conv.log

    # What came back for 1..Logon-1: gap fills over session messages and the
    # order's answer again, all marked PossDup, covering the range without holes.
    replayed = [m for m in conv.wire("QF_IN") if m.get(43) == "Y"]
    covered: list[int] = []
    for m in replayed:
        seq = int(m[34])
        assert seq == (covered[-1] + 1 if covered else 1), f"hole before {seq}\n{conv}"
        if m[35] == "4":
            assert m[123] == "Y" and int(m[36]) > seq, conv.log
            covered.extend(range(seq, int(m[36])))
        else:
            covered.append(seq)
    assert covered[-1] >= gateway_next - 1, conv.log

    (resent,) = [m for m in replayed if m[35] != "4"]
    assert resent[34] == original[34] and resent[35] == original[35], conv.log
    assert resent[122] == original[52], conv  # OrigSendingTime: first SendingTime
    body = {tag: v for tag, v in original.items() if tag not in (9, 10, 34, 43, 52, 122)}
    assert {tag: v for tag, v in resent.items() if tag in body} == body, conv.log
    # QuickFIX accepted the duplicate and handed it to the application.
    delivered = [m[34] for m in conv.messages("FROM_APP") if m.get(43) == "Y"]
    assert delivered == [original[34]], conv.log

    # The gap is closed: the TestRequest echo was processed in sequence and
    # QuickFIX expects exactly the gateway's next message.
    assert [hb[112] for hb in conv.messages("FROM_ADMIN", "0") if 112 in hb] == [
        "QF-TR-GAP-GATEWAY"
    ], conv.log
    assert_clean_logout(conv)
    _, next_target = conv.final_seq()
    assert next_target == int(conv.wire("QF_IN")[-1][34]) + 1, conv.log


@pytest.mark.slow
def test_reset_seq_num_flag_on_logon(client: ClientFactory) -> None:
    qf = client("QFRESET")
    assert_clean(qf.run("order"))
    # Same client and store, now set to reset at Logon: 141=Y, both sides back to 1.
    qf.settings["ResetOnLogon"] = "Y"
    conv = qf.run("basic")
    assert_clean(conv)
    (sent_logon,) = conv.messages("TO_ADMIN", "A")
    (logon,) = conv.messages("FROM_ADMIN", "A")
    assert sent_logon[141] == "Y" and sent_logon[34] == "1", conv.log
    assert logon.get(141) == "Y" and logon[34] == "1", conv.log
    assert conv.messages("FROM_ADMIN", "2") == [], conv.log
    assert_clean_logout(conv)
    assert_contiguous(conv)


@pytest.mark.slow
def test_sigterm_logs_client_out_and_restart_keeps_sequence_numbers(
    initiator: Path, tmp_path: Path
) -> None:
    gw = GatewayProcess(tmp_path, tmp_path / "data", ["QFSTOP"])
    gw.start()
    try:
        workdir = tmp_path / "client"
        workdir.mkdir()
        qf = Client(initiator, workdir, "QFSTOP", gw)

        # Log on, then stop the gateway underneath the live session.
        proc = subprocess.Popen(qf.command("await-logout"), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        logged_on = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("LOGON"):
                    logged_on.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        on_time = logged_on.wait(10)
        if on_time:
            gw.terminate()
        try:
            returncode = proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        reader.join(5)
        status = gw.wait()
        conv = Conversation(returncode, lines, gw.log_tail())
        assert on_time, f"never logged on\n{conv}"
        assert status == 0, f"gateway exited {status} on SIGTERM\n{conv}"

        # The gateway said goodbye first; QuickFIX answered before the disconnect.
        assert_clean(conv)
        theirs = conv.index("FROM_ADMIN 5 ")
        ours = conv.index("TO_ADMIN 5 ", theirs)
        assert 0 <= theirs < ours < conv.index("LOGOUT", ours), conv.log
        (goodbye,) = conv.messages("FROM_ADMIN", "5")
        assert goodbye.get(58), conv  # says why
        gateway_next = int(conv.wire("QF_IN")[-1][34]) + 1
        received_by_gateway = int(conv.wire("QF_OUT")[-1][34])

        # A new gateway process on the same data directory carries on where the
        # old one stopped, in both directions.
        gw.start()
        conv = qf.run("basic")
        assert_clean(conv)
        (logon,) = conv.messages("FROM_ADMIN", "A")
        assert logon[34] == str(gateway_next), conv.log
        # QuickFIX may have burnt a seqnum on a Logon it never sent after the
        # disconnect (its store moves on regardless); then the gateway asks
        # for exactly what it has not received.
        for resend_request in conv.messages("FROM_ADMIN", "2"):
            assert resend_request[7] == str(received_by_gateway + 1), conv.log
        assert_clean_logout(conv)
    finally:
        if gw.process is not None and gw.process.poll() is None:
            status = gw.stop()
            assert status == 0, f"gateway exited {status} on SIGTERM:\n{gw.log_tail()}"
