"""`fixgw serve` as a real subprocess, for crash, signal and recovery tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class GatewayProcess:
    """`log` sends the gateway's stderr to a file, to read as it goes; without it,
    stderr is a pipe read at the end (the gateway's log writer waits on it, not
    its event loop). `preexec_fn` runs in the child before exec (limits); `module`
    is what `python -m` runs (a test script that wraps the gateway)."""

    def __init__(
        self, config: Path, log: Path | None = None,
        preexec_fn: Callable[[], None] | None = None, module: str = "fix_gateway.cli",
    ) -> None:
        self.config = config
        self.log = log
        stderr = open(log, "a") if log is not None else subprocess.PIPE  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--config", str(config)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
            preexec_fn=preexec_fn,
        )
        if log is not None:
            stderr.close()  # type: ignore[union-attr]
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"gateway did not start: {line!r} {self.stderr_text()}")
        self.port = int(line.rsplit(":", 1)[1])

    def stderr_text(self) -> str:
        """What the gateway logged so far (all of it once it has exited, with a pipe)."""
        if self.log is not None:
            return self.log.read_text()
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def rss_kb(self) -> int:
        """Resident set size of the gateway process (VmRSS, kB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def state(self, data_dir: Path) -> dict[str, Any]:
        """Ask the live gateway for its canonical engine state (SIGUSR1)."""
        path = data_dir / "engine" / "state.json"
        if path.exists():
            path.unlink()
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline, "gateway did not write its state"
            time.sleep(0.02)
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def write_config(path: Path, data_dir: Path, extra: str = "") -> Path:
    """A session-layer gateway config (one session, CLIENT1) at `path`; `extra` is
    appended TOML."""
    path.write_text(
        f"""
[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{data_dir}"
fsync = "batch"

[server]
application = "reject"   # session-layer tests: application messages get 35=j

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "CLIENT1"
{extra}
"""
    )
    return path
