"""Issue 22, beyond one process: ``python -m websync serve --workers 4`` shares one port (SO_REUSEPORT)
among 4 processes; 1,000 connections spread over them each do 100 echoes with none lost; the same
processes serve as nginx and HAProxy upstreams, plain and TLS; and a drain of one process under load
loses no message that its handler answered. Clients: tools/load_clients.py (asyncio + websockets)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.spawn import Spawned, free_port
from peers.websync_serve import ROOT, finish, serve_command, wait_listening
from websockets.sync.client import connect as ws_connect

LOAD_CLIENTS = ROOT / "tools" / "load_clients.py"

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


class Cluster:
    """``python -m websync serve`` with 4 worker processes on one port."""

    def __init__(self, *extra: str, handler: str = "serve_app:Echo") -> None:
        self.port = free_port()
        self.process = serve_command(self.port, "--workers", "4", *extra, handler=handler)
        wait_listening(self.port, self.process)
        time.sleep(0.5)  # every worker binds its socket

    def stop(self) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        status, stdout, stderr = finish(self.process, 40)
        return int(status), str(stdout), str(stderr)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster()
    yield running
    status, _, stderr = running.stop()
    assert status == 0, stderr[-3000:]


def pids_behind(url: str, connections: int, **options: Any) -> set[int]:
    pids = set()
    for _ in range(connections):
        with ws_connect(url, **options) as ws:
            ws.send("pid")
            pids.add(int(ws.recv(timeout=5)))
    return pids


def load(
    urls: list[str],
    connections: int,
    echoes: int,
    *extra: str,
    during: Callable[[], None] | None = None,
    duration: float = 240,
) -> dict[str, Any]:
    """Run the load clients; ``during`` is called once the echoes have started."""
    command = [sys.executable, str(LOAD_CLIENTS), "--connections", str(connections), "--echoes", str(echoes)]
    command += ["--duration", str(duration), *extra]
    for url in urls:
        command += ["--url", url]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as clients:
        assert clients.stdin is not None and clients.stdout is not None
        opened = json.loads(clients.stdout.readline())
        clients.stdin.write("go\n")
        clients.stdin.flush()
        if during is not None:
            during()
        echoed = json.loads(clients.stdout.readline())
        clients.stdin.write("go\n")
        clients.stdin.flush()
        clients.wait(60)
    return {**opened, **echoed}


def test_four_processes_share_one_port(cluster: Cluster) -> None:
    assert len(pids_behind(f"ws://127.0.0.1:{cluster.port}/", 40)) == 4


def test_1000_connections_over_4_processes_100_echoes_each(cluster: Cluster) -> None:
    result = load([f"ws://127.0.0.1:{cluster.port}/"], 1000, 100)
    print(f"1000 connections x 100 echoes over 4 processes: {result}")
    assert result["connected"] == 1000 and result["failed"] == 0
    assert result["messages"] == 100_000 and result["lost"] == 0


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_four_processes_behind_a_reverse_proxy(
    request: pytest.FixtureRequest, cluster: Cluster, kind: str, tls: bool, tls_ca: Any, tmp_path: Path
) -> None:
    start: Callable[..., Spawned] = request.getfixturevalue(kind)
    front = start(cluster.port, tls=tls)
    ca = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca))
    scheme = "wss" if tls else "ws"
    result = load([f"{scheme}://localhost:{front.port}/"], 100, 100, "--ca", str(ca))
    assert result["connected"] == 100 and result["messages"] == 10_000 and result["lost"] == 0, result


def test_four_processes_serving_tls_themselves(tls_certfile: Path, tls_ca: Any, tmp_path: Path) -> None:
    running = Cluster("--certfile", str(tls_certfile))
    try:
        ca = tmp_path / "ca.pem"
        tls_ca.cert_pem.write_to_path(str(ca))
        result = load([f"wss://localhost:{running.port}/"], 100, 100, "--ca", str(ca))
        assert result["connected"] == 100 and result["messages"] == 10_000 and result["lost"] == 0, result
    finally:
        status, _, stderr = running.stop()
    assert status == 0, stderr[-3000:]


def test_a_drain_of_one_process_under_load_loses_no_answered_message() -> None:
    running = Cluster("--drain-timeout", "1", handler="serve_app:Counting")
    drained_pid: list[int] = []

    def drain_one() -> None:
        time.sleep(1.0)  # echoes flow
        children = subprocess.run(
            ["pgrep", "-P", str(running.process.pid)], capture_output=True, text=True, check=True
        ).stdout.split()
        drained_pid.append(int(children[0]))
        subprocess.run(["kill", "-TERM", children[0]], check=True)

    try:
        result = load(
            [f"ws://127.0.0.1:{running.port}/"], 200, 1_000_000, "--report-each", during=drain_one, duration=4
        )
    finally:
        status, stdout, stderr = running.stop()
    assert status == 0, stderr[-3000:]
    answered = {}
    for line in stdout.splitlines():
        record = json.loads(line)
        answered[record["path"]] = record
    received = result["received"]
    drained = {path: record for path, record in answered.items() if record["code"] == "shutdown" and received.get(path)}
    assert drained, (sorted({str(r["code"]) for r in answered.values()}), stderr[-1500:])
    assert result["connected"] == 200
    for path, record in answered.items():
        assert received[path] == record["answered"], (path, record, received[path])
    print(
        f"drain under load: {len(drained)} connections of pid {drained_pid} closed with 1001 (reason shutdown), none lost an answer"
    )


def test_docs_show_the_proxy_configurations_the_tests_use() -> None:
    from peers import haproxy, nginx

    doc = (ROOT / "docs" / "server.md").read_text()
    tls = "ssl_certificate /etc/ssl/site.pem; ssl_certificate_key /etc/ssl/site.pem;"
    shown_nginx = nginx.CONF.format(folder="/srv/nginx", port=443, listen=" ssl", tls=tls, backend=8000)
    shown_haproxy = haproxy.CONF.format(port=443, tls=" ssl crt /etc/ssl/site.pem", backend=8000)
    assert f"```nginx\n{shown_nginx}```" in doc
    assert f"```text\n{shown_haproxy}```" in doc
