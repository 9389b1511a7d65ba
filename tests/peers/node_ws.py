"""npm ``ws`` as a client, run by Node in a subprocess (tests/peers/node/ws_client.js)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NodeOutcome", "node_ws_available", "send_and_await_close"]

NODE_DIR = Path(__file__).resolve().parent / "node"


@dataclass(frozen=True)
class NodeOutcome:
    """What the ``ws`` client saw: whether it opened, the close code and reason, its last error."""

    opened: bool
    code: int | None
    reason: str | None
    error: str | None
    timeout: bool = False


def node_ws_available() -> str | None:
    """None when node and npm ``ws`` are there, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        return "npm ws is not installed (make peers runs npm install in tests/peers/node)"
    return None


def send_and_await_close(url: str, size: int, timeout: float = 30, *, ca_file: str | None = None) -> NodeOutcome:
    """Connect to ``url`` with ``ws``, send ``size`` zero bytes in one binary message and wait for the close.

    ``ca_file``: a PEM CA that Node trusts for wss:// (``NODE_EXTRA_CA_CERTS``)."""
    env = None if ca_file is None else {**os.environ, "NODE_EXTRA_CA_CERTS": ca_file}
    result = subprocess.run(
        ["node", str(NODE_DIR / "ws_client.js"), url, str(size)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the ws client printed nothing (exit {result.returncode}): {result.stderr[-2000:]}")
    return NodeOutcome(**json.loads(lines[-1]))
