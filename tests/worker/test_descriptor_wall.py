"""With no file descriptor left, starting a connection fails in the open, with errno EMFILE named:
``websync.connect()`` raises TransportError, and a worker (which makes its wake-up descriptor in its
own thread) exits at once with the OSError as its reason, logged, its handler's ``terminate`` called.
Run in a subprocess: the descriptor limit is the process's."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, logging, os, resource, sys
import websync

logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
url = sys.argv[1]
terminated = []

class Handler(websync.Handler):
    def __init__(self):
        self.url = url

    def terminate(self, reason):
        terminated.append(repr(reason))

resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.dup(0))
except OSError:
    pass
outcome = {}
try:
    websync.connect(url, open_timeout=5)
except websync.TransportError as exc:
    outcome["connect"] = [exc.errno, str(exc)]
worker = websync.start(Handler(), open_timeout=5)
outcome["joined"] = worker.join(10)
reason = worker.exit_reason
outcome["reason"] = [type(reason).__name__, getattr(reason, "errno", None)]
outcome["terminated"] = terminated
print(json.dumps(outcome))
"""


def test_no_descriptor_left_is_a_named_failure_not_a_hang() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"ws://127.0.0.1:{server.getsockname()[1]}/"
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, url],
            capture_output=True,
            text=True,
            timeout=25,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["connect"][0] == errno.EMFILE and "Too many open files" in outcome["connect"][1]
    assert outcome["joined"] is True
    assert outcome["reason"] == ["OSError", errno.EMFILE]
    assert len(outcome["terminated"]) == 1 and "Too many open files" in outcome["terminated"][0]
    assert "crashed" in done.stderr and "Too many open files" in done.stderr  # logged, with its traceback
