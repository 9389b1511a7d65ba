"""Trace switched on and off by signal in a running gunicorn worker: frame lines in its log, then none."""

from __future__ import annotations

import os
import re
import signal

import pytest
from web_servers import GUNICORN_READY, WebServer, gunicorn_argv

pytestmark = pytest.mark.timeout(30)

FRAME_LINE = re.compile(r"websync\.trace DEBUG \[api\] (?:in|out) TEXT .*")


def echo(server: WebServer, text: str) -> None:
    code, body = server.get(f"/echo?text={text}")
    assert code == 200 and body["text"] == text


def test_sigusr2_toggles_the_trace_of_a_running_worker(web_server, upstream) -> None:
    server = web_server(gunicorn_argv("--workers", "1", "--worker-class", "gthread", "--threads", "4"), GUNICORN_READY)
    code, status = server.get("/status")
    assert code == 200
    pid = status["pid"]
    echo(server, "untraced")
    assert FRAME_LINE.findall(server.output) == []

    start = server.offset()
    os.kill(pid, signal.SIGUSR2)
    server.wait_for_output("trace of every worker switched on by SIGUSR2", start)
    echo(server, "traced")
    server.wait_for_output('"text": "traced"', start, count=2)
    lines = FRAME_LINE.findall(server.output[start:])
    assert any("] out TEXT" in line and "traced" in line for line in lines), lines
    assert any("] in TEXT" in line and "traced" in line for line in lines), lines

    start = server.offset()
    os.kill(pid, signal.SIGUSR2)
    server.wait_for_output("trace of every worker switched off by SIGUSR2", start)
    start = server.offset()
    echo(server, "quiet-1")
    echo(server, "quiet-2")
    assert FRAME_LINE.findall(server.output[start:]) == []
    assert server.process.poll() is None, "the worker and the master are still running"
