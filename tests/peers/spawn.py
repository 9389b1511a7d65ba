"""Start a server subprocess, wait for the line that says it listens (or for its port to accept),
and stop it by its PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Spawned", "SpawnError", "free_port"]

POLL_INTERVAL = 0.05


class SpawnError(RuntimeError):
    """The server exited or did not print its ready line in time; the message holds its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot pick their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Spawned:
    """A server process writing its output to ``log_path``; ``match`` is its ready line's match.

    ``listening``: the port the server was told to use; it is ready once that port accepts a
    connection (and ``ready``, if not empty, has matched). ``group``: run the server in a process
    group of its own and kill the whole group at :meth:`stop` (a browser and its helpers).
    """

    def __init__(
        self,
        argv: Sequence[str],
        ready: str,
        log_path: Path,
        *,
        cwd: Path | None = None,
        timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
        listening: int | None = None,
        group: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.listening = listening
        self.group = group
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=group,
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
            if match and (self.listening is None or _accepts(self.listening)):
                return match
            time.sleep(POLL_INTERVAL)
        raise SpawnError(f"{self.argv[:3]} did not start: {self.output[-2000:]}")

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        """The port: ``listening``, or else the ready line's first group."""
        return self.listening if self.listening is not None else int(self.match.group(1))

    def stop(self) -> None:
        """Terminate the process, and kill it if it is still there after 5 seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.group:  # helpers the process started and left behind: in its group, which is ours
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
