"""Start a server subprocess, wait for the line that says it listens, and stop it by its PID."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Spawned", "SpawnError"]

POLL_INTERVAL = 0.05


class SpawnError(RuntimeError):
    """The server exited or did not print its ready line in time; the message holds its output."""


class Spawned:
    """A server process writing its output to ``log_path``; ``match`` is its ready line's match."""

    def __init__(
        self,
        argv: Sequence[str],
        ready: str,
        log_path: Path,
        *,
        cwd: Path | None = None,
        timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self.match = self._wait_for(re.compile(ready), timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            match = pattern.search(self.output)
            if match:
                return match
            time.sleep(POLL_INTERVAL)
        raise SpawnError(f"{self.argv[:3]} did not start: {self.output[-2000:]}")

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        """The port: the ready line's first group."""
        return int(self.match.group(1))

    def stop(self) -> None:
        """Terminate the process, and kill it if it is still there after 5 seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
