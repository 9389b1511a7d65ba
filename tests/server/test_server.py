"""The websync server with clients we did not write (websockets, websocket-client) and websync's own."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
import websocket  # websocket-client
from peers.raw_client import RawClient, masked_frame
from peers.raw_server import OP_CLOSE, OP_TEXT
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.exceptions import InvalidStatus as WebsocketsInvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

import websync
from websync import Binary, Close, Ping, Reject, ServerHandler, Stop, Text
from websync.core.server_handshake import Request

pytestmark = pytest.mark.timeout(30)


class Echo(ServerHandler):
    """Echoes messages; ``"close NNNN"`` closes with code NNNN, ``"stop"`` returns Stop."""

    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def init(self, request: Request) -> None:
        self.events.put(("init", request.path))

    def handle_in(self, frame: Text | Binary) -> Any:
        if isinstance(frame, Text) and frame.data.startswith("close "):
            return Close(int(frame.data.split()[1]), "as asked")
        if isinstance(frame, Text) and frame.data == "stop":
            return Stop()
        return frame

    def handle_info(self, message: Any) -> Any:
        return Text(f"info: {message}")

    def terminate(self, reason: object) -> None:
        self.events.put(("terminate", reason))


@pytest.fixture
def events() -> Iterator[queue.SimpleQueue[tuple[str, Any]]]:
    Echo.events = queue.SimpleQueue()
    yield Echo.events


@pytest.fixture
def server(events: queue.SimpleQueue[tuple[str, Any]]) -> Iterator[websync.Server]:
    with websync.serve(Echo, close_timeout=2) as server:
        yield server


def url(server: websync.Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def next_event(events: queue.SimpleQueue[tuple[str, Any]], kind: str) -> Any:
    while True:
        name, value = events.get(timeout=5)
        if name == kind:
            return value


# -- echo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", ["hello", "ünïcødé ✓", b"\x00\x01\xff", "", b""])
def test_websockets_client_echo(server: websync.Server, message: str | bytes) -> None:
    with ws_connect(url(server)) as ws:
        ws.send(message)
        assert ws.recv(timeout=5) == message


@pytest.mark.parametrize("size", [126, 65536, 3 * 2**18])
@pytest.mark.parametrize("compression", ["deflate", None])
def test_websockets_client_large_messages(server: websync.Server, size: int, compression: str | None) -> None:
    payload = bytes(range(256)) * (size // 256)
    with ws_connect(url(server), compression=compression, max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload
        ws.send(payload.hex()[:size])
        assert ws.recv(timeout=10) == payload.hex()[:size]


def test_websockets_client_fragmented_message_arrives_whole(server: websync.Server) -> None:
    with ws_connect(url(server)) as ws:
        ws.send(["frag", "mented ", "ünïcødé"])
        assert ws.recv(timeout=5) == "fragmented ünïcødé"
        ws.send([b"\x01", b"\x02" * 70000, b"\x03"])
        assert ws.recv(timeout=5) == b"\x01" + b"\x02" * 70000 + b"\x03"


def test_websocket_client_echo_and_ping(server: websync.Server) -> None:
    ws = websocket.create_connection(url(server), timeout=5)
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send_binary(b"\x00\xff" * 40000)
        assert ws.recv() == b"\x00\xff" * 40000
        ws.ping(b"are you there")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG
        assert frame.data == b"are you there"
    finally:
        ws.close()


def test_websocket_client_fragmented_message(server: websync.Server) -> None:
    ws = websocket.create_connection(url(server), timeout=5)
    try:
        ws.send_frame(websocket.ABNF.create_frame("abc", websocket.ABNF.OPCODE_TEXT, fin=0))
        ws.send_frame(websocket.ABNF.create_frame("def", websocket.ABNF.OPCODE_CONT, fin=0))
        ws.ping("in between")  # control frames may interleave
        ws.send_frame(websocket.ABNF.create_frame("ghi", websocket.ABNF.OPCODE_CONT, fin=1))
        assert ws.recv() == "abcdefghi"
    finally:
        ws.close()


def test_websync_client_echo(server: websync.Server) -> None:
    with websync.connect(url(server)) as ws:
        assert ws.extensions == ["permessage-deflate"]
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00" * 300_000, fragment_size=4096)
        assert ws.recv(timeout=5) == b"\x00" * 300_000
        assert ws.ping(b"p").wait(5)


# -- handler callbacks ---------------------------------------------------------------------------


def test_init_sees_the_request_and_terminate_the_close(
    server: websync.Server, events: queue.SimpleQueue[tuple[str, Any]]
) -> None:
    with ws_connect(url(server, "/room/7?x=1")) as ws:
        ws.send("x")
        ws.recv(timeout=5)
        ws.close(4000, "bye")
    assert next_event(events, "init") == "/room/7?x=1"
    reason = next_event(events, "terminate")
    assert isinstance(reason, websync.ConnectionClosed)
    assert (reason.code, reason.reason) == (4000, "bye")


def test_init_may_push_frames_once_open(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    class Greeter(Echo):
        def init(self, request: Request) -> Any:
            return [Text("welcome"), Binary(b"\x01")]

    with websync.serve(Greeter) as server, ws_connect(url(server)) as ws:
        assert ws.recv(timeout=5) == "welcome"
        assert ws.recv(timeout=5) == b"\x01"


@pytest.mark.parametrize("code", [1000, 1008, 4001])
def test_server_closes_with_the_code_the_handler_returns(server: websync.Server, code: int) -> None:
    with ws_connect(url(server)) as ws:
        ws.send(f"close {code}")
        with pytest.raises(WebsocketsClosed) as caught:
            ws.recv(timeout=5)
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (code, "as asked")


def test_stop_closes_with_1000(server: websync.Server, events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    with ws_connect(url(server)) as ws:
        ws.send("stop")
        with pytest.raises(WebsocketsClosed) as caught:
            ws.recv(timeout=5)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1000
    assert next_event(events, "terminate") == "normal"


def test_push_from_another_thread_with_send_and_send_info(
    server: websync.Server, events: queue.SimpleQueue[tuple[str, Any]]
) -> None:
    with ws_connect(url(server)) as ws:
        next_event(events, "init")
        [worker] = server.connections
        worker.send("pushed")
        assert ws.recv(timeout=5) == "pushed"
        worker.send_info(42)
        assert ws.recv(timeout=5) == "info: 42"


def test_handle_control_sees_pings(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    class Counting(Echo):
        def handle_control(self, frame: Any) -> Any:
            self.events.put(("control", frame))
            return super().handle_control(frame)

    with websync.serve(Counting) as server, ws_connect(url(server)) as ws:
        assert ws.ping(b"abc").wait(5)
        assert next_event(events, "control") == Ping(b"abc")


def test_a_crashing_handler_ends_only_its_connection(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    class Crashing(Echo):
        def handle_in(self, frame: Any) -> Any:
            if frame == Text("crash"):
                raise RuntimeError("boom")
            return frame

    with websync.serve(Crashing, close_timeout=1) as server:
        with ws_connect(url(server)) as ws:
            ws.send("crash")
            with pytest.raises(WebsocketsClosed) as caught:
                ws.recv(timeout=5)
        assert caught.value.rcvd is not None
        assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1011, "internal error")
        reason = next_event(events, "terminate")
        assert isinstance(reason, RuntimeError)
        with ws_connect(url(server)) as ws:
            ws.send("still serving")
            assert ws.recv(timeout=5) == "still serving"


# -- negotiation ---------------------------------------------------------------------------------


def test_subprotocol_follows_the_servers_preference(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    seen: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    class Reporting(Echo):
        def init(self, request: Request) -> None:
            seen.put(self.subprotocol)

    with websync.serve(Reporting, subprotocols=["chat.v2", "chat.v1"]) as server:
        with ws_connect(url(server), subprotocols=[Subprotocol("chat.v1"), Subprotocol("chat.v2")]) as ws:
            assert ws.subprotocol == "chat.v2"
        assert seen.get(timeout=5) == "chat.v2"
        ws_client = websocket.create_connection(url(server), subprotocols=["chat.v1"], timeout=5)
        assert ws_client.getsubprotocol() == "chat.v1"
        ws_client.close()
        with ws_connect(url(server)) as ws:
            assert ws.subprotocol is None


def test_compression_is_negotiated_and_can_be_off(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    with websync.serve(Echo) as server, ws_connect(url(server), compression="deflate") as ws:
        [extension] = ws.protocol.extensions
        assert extension.name == "permessage-deflate"
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        ws.send("compressible " * 1000)
        assert ws.recv(timeout=5) == "compressible " * 1000
    with websync.serve(Echo, compression=None) as server, ws_connect(url(server), compression="deflate") as ws:
        assert ws.protocol.extensions == []
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


# -- rejection -----------------------------------------------------------------------------------


def test_init_rejects_with_a_status_raised_or_returned(events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    class Gate(Echo):
        def init(self, request: Request) -> Any:
            if request.path == "/raise":
                raise Reject(403, b"forbidden here", {"X-Reason": "policy"})
            if request.path == "/return":
                return Reject(401, b"who are you")
            return None

    with websync.serve(Gate) as server:
        with pytest.raises(WebsocketsInvalidStatus) as caught:
            ws_connect(url(server, "/raise"))
        response = caught.value.response
        assert (response.status_code, response.body) == (403, b"forbidden here")
        assert response.headers["X-Reason"] == "policy"
        with pytest.raises(websocket.WebSocketBadStatusException) as bad:
            websocket.create_connection(url(server, "/return"), timeout=5)
        assert bad.value.status_code == 401
        with pytest.raises(websync.InvalidStatus) as refused:
            websync.connect(url(server, "/return"))
        assert (refused.value.status, refused.value.body) == (401, b"who are you")
        with ws_connect(url(server, "/open")) as ws:
            ws.send("ok")
            assert ws.recv(timeout=5) == "ok"
    terminated = [reason for kind, reason in _drain(events) if kind == "terminate"]
    assert len(terminated) == 1  # only the connection that opened


def test_an_init_that_raises_answers_500_even_when_handle_error_swallows_errors(
    events: queue.SimpleQueue[tuple[str, Any]],
) -> None:
    """``handle_error`` answers the callbacks of an open connection: an ``init`` that failed (an
    authentication check, say) must not open it because the handler logs errors and goes on."""

    class Lenient(Echo):
        def init(self, request: Request) -> None:
            raise PermissionError("no credentials")

        def handle_error(self, error: Exception) -> None:
            events.put(("handle_error", error))

    with websync.serve(Lenient) as server:
        with pytest.raises(WebsocketsInvalidStatus) as caught:
            ws_connect(url(server))
        assert caught.value.response.status_code == 500
    kinds = [kind for kind, _ in _drain(events)]
    assert "terminate" not in kinds and "handle_in" not in kinds and "handle_error" not in kinds


def test_reject_needs_an_error_status() -> None:
    with pytest.raises(ValueError):
        Reject(200)


def _drain(events: queue.SimpleQueue[tuple[str, Any]]) -> list[tuple[str, Any]]:
    items = []
    while not events.empty():
        items.append(events.get())
    return items


@pytest.mark.timeout(60)
def test_messages_that_arrive_with_the_close_are_answered_before_the_close_reply(server: websync.Server) -> None:
    # Three messages and the close in one write: the echoes go out before the close reply, as
    # WebSock's servers do (each in its own read they always were; glued to the close they were
    # dropped in 20 runs of 20).
    host, port = server.host, server.port
    for _ in range(30):
        with RawClient(host, port) as client:
            client.send(
                b"".join(masked_frame(OP_TEXT, text) for text in (b"a", b"b", b"c"))
                + masked_frame(OP_CLOSE, b"\x03\xe8")
            )
            frames = client.frames_until_close()
        assert [(frame.opcode, frame.payload) for frame in frames] == [
            (OP_TEXT, b"a"),
            (OP_TEXT, b"b"),
            (OP_TEXT, b"c"),
            (OP_CLOSE, b"\x03\xe8"),
        ]


def test_a_close_returned_by_the_handler_is_bounded_by_close_timeout() -> None:
    # handle_in returns Close(4000): a client that never answers it used to keep the connection
    # (and its thread) forever; like any close this side starts, it gets close_timeout.
    ended: queue.SimpleQueue[object] = queue.SimpleQueue()

    class Closing(ServerHandler):
        def handle_in(self, frame: Text | Binary) -> Close:
            return Close(4000, "done")

        def terminate(self, reason: object) -> None:
            ended.put(reason)

    with websync.serve(Closing, close_timeout=0.5) as server, RawClient(server.host, server.port) as client:
        client.send(masked_frame(OP_TEXT, b"bye?"))
        close = client.read_frame()
        assert (close.opcode, close.payload) == (OP_CLOSE, b"\x0f\xa0done")
        reason = ended.get(timeout=3)  # the client stays silent
        assert isinstance(reason, websync.ConnectionClosedError) and reason.code == 1006
