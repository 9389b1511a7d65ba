"""The Flask example under real gunicorn (2 workers): one live connection per worker process, 50
concurrent request/replies through them, and 1001 on every WebSocket at SIGTERM."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from peers.recording_server import RecordingServer
from web_servers import GUNICORN_READY, WAIT, WebServer, gunicorn_argv

pytestmark = pytest.mark.timeout(60)

WORKERS = 2


def ready(status: dict[str, Any]) -> bool:
    """Both workers connected, and the API's hello (the port upstream saw) received."""
    workers = status["workers"]
    return all(workers[name]["connected_since"] is not None for name in ("api", "feed")) and bool(status["notices"])


def worker_statuses(server: WebServer) -> dict[int, dict[str, Any]]:
    """``/status`` of every worker process, by pid, asked until each one reports its connections up."""
    statuses: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + WAIT
    with ThreadPoolExecutor(8) as pool:
        while len(statuses) < WORKERS or not all(map(ready, statuses.values())):
            assert time.monotonic() < deadline, f"not ready: {statuses}"
            for code, body in pool.map(lambda _: server.get("/status"), range(8)):
                assert code == 200
                statuses[body["pid"]] = body
    assert len(statuses) == WORKERS
    return statuses


def api_ports(upstream: RecordingServer) -> list[int]:
    return sorted(port for path, port in upstream.opened() if path == "/api")


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--preload", "--worker-class", "sync"], id="sync-preload"),
        pytest.param(["--worker-class", "gthread", "--threads", "8"], id="gthread"),
    ],
)
def test_flask_example_under_gunicorn(web_server, upstream: RecordingServer, options: list[str]) -> None:
    server = web_server(gunicorn_argv("--workers", str(WORKERS), *options), GUNICORN_READY)

    # Each worker process has its own live connections, made after the fork (never in the master).
    statuses = worker_statuses(server)
    hello_ports = sorted(status["notices"][0]["hello"] for status in statuses.values())
    assert hello_ports == api_ports(upstream), "each worker process holds one /api connection of its own"
    assert upstream.opened_paths(2 * WORKERS, WAIT).count("/feed") == WORKERS
    code, feed = server.get("/feed")
    assert code == 200 and feed and all(message.startswith("tick ") for message in feed)

    # 50 concurrent request/replies, each with its own answer, over the same connections.
    texts = [f"message {i} " + "x" * i for i in range(50)]
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda text: server.get(f"/echo?text={text.replace(' ', '%20')}"), texts))
    assert [code for code, _ in answers] == [200] * 50
    assert [body["text"] for _, body in answers] == texts
    assert api_ports(upstream) == hello_ports, "no connection per request"

    # SIGTERM to the master: workers exit gracefully and every WebSocket closes with 1001.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(WAIT) == 0
    closed = upstream.closed()
    assert len(closed) == 2 * WORKERS
    assert {entry.code for entry in closed} == {1001}, closed
