"""Web servers running the examples (gunicorn, Django's runserver), for the embedding tests."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from peers.spawn import Spawned

__all__ = ["GUNICORN_READY", "ROOT", "WAIT", "WebServer", "free_port", "gunicorn_argv"]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0
"""Seconds to wait for a server to start, answer or write a line."""


class WebServer(Spawned):
    """A web server subprocess in the repository root; ``get(path)`` is a fresh HTTP/1.1 request."""

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"Connection": "close"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def offset(self) -> int:
        """How much output there is so far (to look only at what comes after)."""
        return len(self.output)

    def wait_for_output(self, text: str, start: int = 0, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while self.output[start:].count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not in the output:\n{self.output[-3000:]}"
            time.sleep(0.05)


def gunicorn_argv(*options: str) -> list[str]:
    """gunicorn serving the Flask example on a free port, with the example's settings."""
    return [
        sys.executable, "-m", "gunicorn", "-c", "examples/flask_app/gunicorn.conf.py",
        "--bind", "127.0.0.1:0", "--no-control-socket", "--graceful-timeout", "10", *options,
        "examples.flask_app.app:app",
    ]  # fmt: skip


GUNICORN_READY = r"Listening at: http://127.0.0.1:(\d+)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
