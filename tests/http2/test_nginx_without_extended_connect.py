"""Issue 18 §3: a server with HTTP/2 but without RFC 8441 — nginx 1.22 with ``listen … ssl http2``
offers h2 by ALPN and never enables extended CONNECT. The decision comes with the server's
SETTINGS: ``http2="auto"`` falls back to HTTP/1.1, ``http2=True`` (and a session) raise
:class:`ExtendedConnectDisabled`; the h2 connection is closed at once, leaving no thread and no
socket behind."""

from __future__ import annotations

import gc
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers.spawn import Spawned

import websync
import websync.http2
from websync import ExtendedConnectDisabled

pytestmark = pytest.mark.timeout(60)

RUNS = 5
DECISION_BOUND = 1.0
"""Seconds: generous for two TLS handshakes and an upgrade on loopback; the bug took 5 s."""


@pytest.fixture(scope="module")
def front(nginx: Callable[..., Spawned], websockets_server: Callable[..., Any]) -> str:
    """``wss://localhost:P``: nginx (TLS, http2) in front of a ``websockets`` echo server."""
    return f"wss://localhost:{nginx(websockets_server().port, tls=True, http2=True).port}"


def _h2_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("websync-h2")]


def _sockets() -> int:
    """Sockets open in this process."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # the listing's own descriptor, gone already
    return count


@pytest.fixture
def nothing_left_behind() -> Iterator[None]:
    """No h2 link thread and no socket more than before, right after the test (no grace period)."""
    gc.collect()
    before = _sockets()
    yield
    gc.collect()
    assert _h2_threads() == []
    assert _sockets() == before


@pytest.mark.usefixtures("websync_trusts_the_test_ca", "nothing_left_behind")
@pytest.mark.parametrize("run", range(RUNS))
def test_auto_falls_back_to_http11_at_once(front: str, run: int) -> None:
    started = time.monotonic()
    with websync.connect(front + "/", http2="auto", open_timeout=10, close_timeout=2) as ws:
        decided = time.monotonic() - started
        assert _h2_threads() == []
        assert ws.status == 101
        ws.send("through nginx over HTTP/1.1")
        assert ws.recv(timeout=5) == "through nginx over HTTP/1.1"
    assert decided < DECISION_BOUND


@pytest.mark.usefixtures("websync_trusts_the_test_ca", "nothing_left_behind")
@pytest.mark.parametrize("run", range(RUNS))
def test_http2_true_is_refused_at_once(front: str, run: int) -> None:
    started = time.monotonic()
    with pytest.raises(ExtendedConnectDisabled):
        websync.connect(front + "/", http2=True, open_timeout=10)
    assert time.monotonic() - started < DECISION_BOUND


@pytest.mark.usefixtures("nothing_left_behind")
@pytest.mark.parametrize("run", range(RUNS))
def test_session_is_refused_at_once(front: str, tls_ca: Any, run: int) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["h2"])  # the caller's context offers h2 itself
    started = time.monotonic()
    with pytest.raises(ExtendedConnectDisabled):
        websync.http2.connect_session(front, ssl=context, open_timeout=10)
    assert time.monotonic() - started < DECISION_BOUND
