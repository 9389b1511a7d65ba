"""Issue 18 §5: a failure close code reaches the peer. Clients we did not write (npm ws, aiohttp,
headless Chromium, directly and through nginx and HAProxy) send 16 MiB to ``websync.serve`` with the default
1 MiB ``max_size`` and must learn 1009 (message too big), not a dropped connection (1006)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers import aiohttp_client, node_ws
from peers.chromium import Chromium
from peers.spawn import Spawned

import websync
from websync import Binary, ServerHandler, Text

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

TOO_BIG = 16 << 20
RUNS = 5
BROWSER_RUNS = 3
MESSAGE_TOO_BIG = 1009

SEND_AND_AWAIT_CLOSE = """
new Promise((resolve) => {
  const result = {opened: false, error: false};
  const ws = new WebSocket(%s);
  ws.binaryType = "arraybuffer";
  const timer = setTimeout(() => resolve({...result, timeout: true}), 20000);
  ws.onopen = () => { result.opened = true; ws.send(new Uint8Array(%d)); };
  ws.onerror = () => { result.error = true; };
  ws.onclose = (event) => {
    clearTimeout(timer);
    resolve({...result, code: event.code, reason: event.reason, wasClean: event.wasClean});
  };
})
"""


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Any:
        return frame


@pytest.fixture
def server() -> Iterator[websync.Server]:
    """websync's server with its defaults (max_size 1 MiB), echoing."""
    with websync.serve(Echo, close_timeout=2) as running:
        yield running


def url(server: websync.Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


@pytest.mark.usefixtures("node_ws")
@pytest.mark.parametrize("run", range(RUNS))
def test_node_ws_client_learns_1009(server: websync.Server, run: int) -> None:
    outcome = node_ws.send_and_await_close(url(server), TOO_BIG)
    assert outcome.opened
    assert outcome.code == MESSAGE_TOO_BIG, outcome


@pytest.mark.parametrize("run", range(RUNS))
def test_aiohttp_client_learns_1009(server: websync.Server, run: int) -> None:
    pytest.importorskip("aiohttp")
    outcome = aiohttp_client.send_and_await_close(url(server), TOO_BIG)
    assert outcome.code == MESSAGE_TOO_BIG, outcome


def _browser_sends(chromium: Chromium, target: str) -> dict[str, Any]:
    script = SEND_AND_AWAIT_CLOSE % (repr(target), TOO_BIG)
    result: dict[str, Any] = chromium.evaluate(script, timeout=40)
    return result


@pytest.mark.parametrize("run", range(BROWSER_RUNS))
def test_chromium_learns_1009(chromium: Chromium, server: websync.Server, run: int) -> None:
    result = _browser_sends(chromium, url(server))
    assert result["opened"]
    assert result["code"] == MESSAGE_TOO_BIG, result


@pytest.mark.parametrize("run", range(BROWSER_RUNS))
@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_chromium_through_a_reverse_proxy_learns_1009(
    request: pytest.FixtureRequest, chromium: Chromium, server: websync.Server, kind: str, run: int
) -> None:
    start: Callable[..., Spawned] = request.getfixturevalue(kind)
    front = start(server.port)
    result = _browser_sends(chromium, f"ws://127.0.0.1:{front.port}/")
    assert result["opened"]
    assert result["code"] == MESSAGE_TOO_BIG, result
