"""Fixtures: a recording upstream and the examples' web servers pointed at it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peers.recording_server import RecordingServer
from web_servers import ROOT, WAIT, WebServer


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[RecordingServer]:
    """Echo on ``/api`` (after a ``{"hello": port}``), ticks on ``/feed``; records opens and close codes."""
    server = RecordingServer(tmp_path / "upstream.log")
    yield server
    server.stop()


@pytest.fixture
def web_server(upstream: RecordingServer, tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """``web_server(argv, ready)``: start a server of an example with UPSTREAM_URL set; stopped at teardown."""
    servers: list[WebServer] = []

    def start(argv: list[str], ready: str) -> WebServer:
        env = {**os.environ, "UPSTREAM_URL": upstream.url, "PYTHONPATH": str(ROOT)}
        env.pop("WEBSYNC_TRACE", None)
        log = tmp_path / f"web-{len(servers)}.log"
        server = WebServer(argv, ready, log, cwd=ROOT, timeout=WAIT, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
