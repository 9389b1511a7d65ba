"""Every script in examples/ runs against a local server and ends as it should.

The Flask and Django projects (and examples/relay.py, which they share) run under gunicorn and
Django's runserver in tests/embedding/; the echo server is the server of every test here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.example_echo import ROOT, start_example_echo
from peers.spawn import Spawned

pytestmark = pytest.mark.timeout(90)

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawned]:
    server = start_example_echo(tmp_path_factory.mktemp("example-echo") / "echo.log")
    yield server
    server.stop()


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{argv} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def test_blocking_script(echo: Spawned) -> None:
    result = run("examples/blocking_script.py", f"ws://127.0.0.1:{echo.port}/")
    assert "echo: hello" in result.stdout
    assert "echo: world" in result.stdout
    assert "pong received: True" in result.stdout
    assert "closed with code 1000" in result.stdout


def test_callback_client(echo: Spawned) -> None:
    result = run("examples/callback_client.py", f"ws://127.0.0.1:{echo.port}/")
    assert [line for line in result.stdout.splitlines() if line.startswith("echo:")] == [f"echo: {n}" for n in range(5)]
    assert "terminated: normal" in result.stdout


def test_demo() -> None:
    result = run("-m", "examples.demo")
    assert "=== a blocking client" in result.stdout


def test_echo_server_stops_on_ctrl_c(tmp_path: Path) -> None:
    server = start_example_echo(tmp_path / "echo.log")
    try:
        run("-m", "websync", f"ws://127.0.0.1:{server.port}/", "--send", "hi")
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(10) == 0
        assert "stopping: closing every connection with 1001" in server.output
    finally:
        server.stop()
