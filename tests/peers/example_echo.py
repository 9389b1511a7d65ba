"""``examples/echo_server.py`` as a subprocess: the local server the documentation's examples and
the ``examples/`` scripts run against (tests/test_doc_examples.py, tests/test_examples.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .spawn import Spawned

__all__ = ["ROOT", "start_example_echo"]

# The tree that holds tests/, examples/, README.md and docs/: the repository, the unpacked sdist,
# or the copy tools/test_pythons.sh runs the installed wheel from.
ROOT = Path(__file__).resolve().parents[2]


def start_example_echo(log_path: Path) -> Spawned:
    """Start the example echo server on a free port of 127.0.0.1 (``.port``); ``stop()`` ends it."""
    argv = [sys.executable, "-u", "-m", "examples.echo_server", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Spawned(argv, r"echo server on ws://127\.0\.0\.1:(\d+)/", log_path, cwd=ROOT, env=env)
