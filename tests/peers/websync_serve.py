"""``python -m websync serve`` in a subprocess for the server tests, with handlers from tests/serve_app.py."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ServeCommand", "finish", "serve_command", "wait_listening"]

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent


class ServeCommand(subprocess.Popen[str]):
    """``python -m websync serve`` whose output goes to files (a pipe nobody reads could fill up)."""

    def __init__(self, port: int, *extra: str, handler: str = "serve_app:Echo") -> None:
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by outputs()
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by outputs()
        super().__init__(
            [sys.executable, "-m", "websync", "serve", handler, "--app-dir", str(TESTS), "--port", str(port), *extra],
            stdout=self.out,
            stderr=self.err,
            text=True,
            cwd=ROOT,
        )

    def outputs(self) -> tuple[str, str]:
        self.out.seek(0)
        self.err.seek(0)
        outputs = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        return outputs


def serve_command(port: int, *extra: str, handler: str = "serve_app:Echo") -> ServeCommand:
    return ServeCommand(port, *extra, handler=handler)


def wait_listening(port: int, process: ServeCommand, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    _, stderr = process.outputs()
    raise RuntimeError(f"websync serve did not start: {stderr[-2000:]}")


def finish(process: ServeCommand, timeout: float = 15) -> tuple[int, str, str]:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    stdout, stderr = process.outputs()
    return int(process.returncode), stdout, stderr
