"""One TLS connection read in one thread and written in another, while the peer updates its keys.

The peer (tests/peers/key_update_server.py, ``websockets`` on asyncio) asks for a TLS 1.3
KeyUpdate after every message it sends. Without ``websync.net.tls.SerializedTLS``, OpenSSL ran a
reader's ``SSL_read`` and a writer's ``SSL_write`` on one SSL object at once: the process aborted
with a corrupted heap, or the stream broke with ``[SSL] internal error`` (3 of 3 connections, 2,000
messages each). The client runs in a subprocess of its own, so that such a crash fails the test
instead of ending the test run.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.key_update_server import feed_message, start_key_update_server

import websync

MESSAGES = 2000
CONNECTIONS = 3
CLIENT_TIMEOUT = 120


@pytest.fixture(scope="module")
def key_update_url(tls_certfile: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_key_update_server(tls_certfile, tmp_path_factory.mktemp("key-update") / "server.log")
    try:
        yield f"wss://127.0.0.1:{server.match.group(1)}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ca_file(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key-update-ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


def _binary(message: str | bytes) -> bytes:
    assert isinstance(message, bytes), message
    return message


def echo_from_two_threads(url: str, ca_file: str) -> list[str]:
    """One thread sends MESSAGES numbered messages (a feed's), another receives their echoes: what went wrong."""
    context = ssl.create_default_context(cafile=ca_file)
    with websync.connect(url, ssl=context, compression=None, max_size=None) as ws:
        received: list[bytes] = []
        errors: list[str] = []

        def receive() -> None:
            try:
                for _ in range(MESSAGES):
                    received.append(_binary(ws.recv(timeout=30)))
            except websync.WebSocketError as exc:
                errors.append(f"recv: {exc!r}")

        reader = threading.Thread(target=receive)
        reader.start()
        try:
            for number in range(MESSAGES):
                ws.send(feed_message(number))
        except websync.WebSocketError as exc:
            errors.append(f"send: {exc!r}")
        reader.join(60)
        wrong = [number for number, message in enumerate(received) if message != feed_message(number)]
        if len(received) != MESSAGES or wrong:
            errors.append(f"{len(received)} of {MESSAGES} echoes, {len(wrong)} garbled")
        return errors


def read_feed_with_keepalive(url: str, ca_file: str) -> list[str]:
    """One thread reads a feed of MESSAGES messages while the client's worker sends its keepalive
    pings every millisecond: a blocking script with no thread of its own writes concurrently too."""
    context = ssl.create_default_context(cafile=ca_file)
    options: dict[str, Any] = {"compression": None, "max_size": None, "ping_interval": 0.001, "ping_timeout": 30}
    with websync.connect(f"{url}/feed/{MESSAGES}", ssl=context, **options) as ws:
        try:
            received = [_binary(ws.recv(timeout=30)) for _ in range(MESSAGES)]
        except websync.WebSocketError as exc:
            return [f"recv: {exc!r}"]
        pings = ws.worker.stats.frames_out
    wrong = [number for number, message in enumerate(received) if message != feed_message(number)]
    return [f"{len(wrong)} garbled"] if wrong else [] if pings else ["no keepalive ping went out"]


SCENARIOS = {"echo": echo_from_two_threads, "feed": read_feed_with_keepalive}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_tls_connection_read_and_written_by_two_threads_survives_key_updates(
    scenario: str, key_update_url: str, ca_file: Path
) -> None:
    argv = [sys.executable, __file__, scenario, key_update_url, str(ca_file), str(CONNECTIONS)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # tests/, for ``peers``
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=False, env=env)
    assert done.returncode == 0, f"the client died ({done.returncode}): {done.stderr[-2000:]}"
    assert done.stdout.splitlines() == ["ok"] * CONNECTIONS, done.stdout + done.stderr[-2000:]


if __name__ == "__main__":
    scenario, url, ca, connections = sys.argv[1:5]
    for _ in range(int(connections)):
        print("; ".join(SCENARIOS[scenario](url, ca)) or "ok", flush=True)
