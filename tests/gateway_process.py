"""`fixgw serve` as a real subprocess, for crash, signal and recovery tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class GatewayProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fix_gateway.cli", "serve", "--config", str(config)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise AssertionError(f"gateway did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.rsplit(":", 1)[1])

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
