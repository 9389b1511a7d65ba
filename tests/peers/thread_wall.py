"""``websync.connect()`` in a process where no thread can start: each asks for 1 GiB of stack, past
the process's address-space limit. :func:`connect_without_threads` runs this module in such a
process (``python -m peers.thread_wall URL OPTIONS_JSON``), which prints, as JSON, the
TransportError's errno, message and cause, and the descriptors the failed call left open, counted
while its frames still hold its objects (so that none is left to the garbage collector)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import websync

ROOT = Path(__file__).resolve().parents[2]


def connect_without_threads(url: str, **options: Any) -> dict[str, Any]:
    """The outcome of ``websync.connect(url, **options)`` in such a process, run with
    ResourceWarning as an error."""
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-m", "peers.thread_wall", url, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=25,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own


def main() -> None:
    url, options = sys.argv[1], json.loads(sys.argv[2])
    threading.stack_size(1 << 30)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (size + (512 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
    before = descriptors()
    outcome: dict[str, Any] = {}
    try:
        websync.connect(url, **options)
    except websync.TransportError as exc:
        outcome = {"errno": exc.errno, "message": str(exc), "cause": type(exc.__cause__).__name__}
        outcome["left_open"] = descriptors() - before
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
