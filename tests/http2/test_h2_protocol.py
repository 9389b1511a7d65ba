"""The sans-IO HTTP/2 layer, byte for byte against h2's server side: SETTINGS, extended CONNECT,
flow control both ways, stream ends and GOAWAY; and the RFC 8441 handshake headers."""

from __future__ import annotations

from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from websync import ExtendedConnectDisabled, InvalidHandshake, InvalidStatus, NegotiationError
from websync.core.handshake import ClientHandshake
from websync.core.headers import Headers
from websync.core.uri import parse_uri
from websync.http2.handshake import accept, request_headers
from websync.http2.protocol import (
    NO_ERROR,
    STREAM_WINDOW,
    Answered,
    Ended,
    Event,
    GoingAway,
    H2Protocol,
    Ready,
    Received,
    Reset,
    WindowOpened,
)

pytestmark = pytest.mark.timeout(10)

CONNECT = [
    (":method", "CONNECT"),
    (":protocol", "websocket"),
    (":scheme", "http"),
    (":path", "/chat"),
    (":authority", "example.com"),
    ("sec-websocket-version", "13"),
]


class Server:
    """h2's server side, wired to a client :class:`H2Protocol` by moving bytes by hand."""

    def __init__(self, client: H2Protocol, *, extended_connect: bool = True) -> None:
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(extended_connect)},
        )
        self.client = client
        self.events: list[h2.events.Event] = []
        self.h2.initiate_connection()

    def to_server(self) -> list[h2.events.Event]:
        events = self.h2.receive_data(self.client.data_to_send())
        self.events += events
        return events

    def to_client(self) -> list[Event]:
        return list(self.client.receive_data(self.h2.data_to_send()))

    def handshake(self) -> list[Event]:
        self.to_server()
        return self.to_client()

    def accept(self, stream_id: int, *extra: tuple[str, str]) -> list[Event]:
        self.to_server()
        self.h2.send_headers(stream_id, [(":status", "200"), *extra])
        return self.to_client()


def opened(*, extended_connect: bool = True) -> tuple[H2Protocol, Server]:
    client = H2Protocol()
    server = Server(client, extended_connect=extended_connect)
    server.handshake()
    return client, server


def test_connect_waits_for_the_servers_settings() -> None:
    client = H2Protocol()
    with pytest.raises(InvalidHandshake, match="before the server's SETTINGS"):
        client.open_stream(CONNECT)
    server = Server(client)
    events = server.handshake()
    assert [type(event) for event in events] == [Ready]
    assert isinstance(events[0], Ready)
    assert events[0].extended_connect and events[0].settings["ENABLE_CONNECT_PROTOCOL"] == 1
    assert client.open_stream(CONNECT) == 1


def test_connect_is_refused_without_the_setting() -> None:
    client, _ = opened(extended_connect=False)
    assert client.extended_connect is False
    with pytest.raises(ExtendedConnectDisabled):
        client.open_stream(CONNECT)


def test_the_server_receives_the_extended_connect() -> None:
    client, server = opened()
    stream_id = client.open_stream(CONNECT)
    (request,) = [event for event in server.to_server() if isinstance(event, h2.events.RequestReceived)]
    assert request.stream_id == stream_id
    # header_encoding="utf-8": h2 hands str names and values, though its hints say bytes
    assert cast("list[tuple[str, str]]", list(request.headers)) == CONNECT
    assert not request.stream_ended  # the stream stays open for WebSocket frames


def test_answer_without_pseudo_headers() -> None:
    client, server = opened()
    stream_id = client.open_stream(CONNECT)
    (answer,) = [
        event for event in server.accept(stream_id, ("sec-websocket-protocol", "chat")) if isinstance(event, Answered)
    ]
    assert answer == Answered(stream_id, 200, Headers([("sec-websocket-protocol", "chat")]))


def test_sends_are_split_to_the_max_frame_size_and_bounded_by_the_window() -> None:
    client, server = opened()
    stream_id = client.open_stream(CONNECT)
    server.accept(stream_id)
    assert client.send_window(stream_id) == 65535
    client.send_data(stream_id, b"x" * 65535)
    assert client.send_window(stream_id) == 0
    frames = [event for event in server.to_server() if isinstance(event, h2.events.DataReceived)]
    assert [len(event.data) for event in frames] == [16384, 16384, 16384, 16383]
    server.h2.acknowledge_received_data(65535, stream_id)
    assert server.to_client().count(WindowOpened(stream_id, 65535)) == 1
    assert client.send_window(stream_id) == 65535


def test_received_data_is_acknowledged_only_when_consumed() -> None:
    client, server = opened()
    stream_id = client.open_stream(CONNECT)
    server.accept(stream_id)
    server.h2.send_data(stream_id, b"y" * 1000, pad_length=10)
    (received,) = server.to_client()
    assert received == Received(stream_id, b"y" * 1000, 1011)
    assert server.h2.local_flow_control_window(stream_id) == STREAM_WINDOW - 1011
    big = STREAM_WINDOW - 1011
    for start in range(0, big, 16384):
        server.h2.send_data(stream_id, b"z" * min(16384, big - start))
    server.to_client()
    assert server.h2.local_flow_control_window(stream_id) == 0  # the client has not consumed anything
    client.consumed(stream_id, STREAM_WINDOW)
    server.to_server()
    assert server.h2.local_flow_control_window(stream_id) == STREAM_WINDOW


def test_end_stream_and_reset_are_reported() -> None:
    client, server = opened()
    first, second = client.open_stream(CONNECT), client.open_stream(CONNECT)
    server.to_server()
    server.h2.send_headers(first, [(":status", "200")])
    server.h2.send_headers(second, [(":status", "200")])
    server.h2.end_stream(first)
    server.h2.reset_stream(second, NO_ERROR)
    events = server.to_client()
    assert Ended(first) in events
    assert Reset(second, 0) in events
    client.end_stream(first)
    client.reset_stream(second)  # already closed: nothing is sent
    assert any(isinstance(event, h2.events.StreamEnded) for event in server.to_server())


def test_streams_go_on_after_goaway_but_no_new_one_opens() -> None:
    client, server = opened()
    stream_id = client.open_stream(CONNECT)
    server.accept(stream_id)
    server.h2.close_connection(last_stream_id=stream_id)
    server.h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN  # h2 would stop here too
    server.h2.send_data(stream_id, b"still flowing")
    events = server.to_client()
    assert events == [GoingAway(0, stream_id, b""), Received(stream_id, b"still flowing", 13)]
    with pytest.raises(InvalidHandshake, match="going away"):
        client.open_stream(CONNECT)
    client.send_data(stream_id, b"reply")
    assert any(isinstance(event, h2.events.DataReceived) for event in server.to_server())


def test_a_broken_peer_is_an_invalid_handshake() -> None:
    client = H2Protocol()
    with pytest.raises(InvalidHandshake, match="HTTP/2 protocol error"):
        client.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0


def handshake(**options: object) -> ClientHandshake:
    return ClientHandshake(parse_uri("wss://user:pw@example.com:8443/chat?x=1"), **options)  # type: ignore[arg-type]


def test_request_headers_are_those_of_rfc_8441() -> None:
    headers = request_headers(handshake(subprotocols=["chat"], origin="https://example.com", headers={"X-Token": "t"}))
    names = [name for name, _ in headers]
    assert headers[:5] == [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/chat?x=1"),
        (":authority", "example.com:8443"),
    ]
    assert ("sec-websocket-version", "13") in headers
    assert ("sec-websocket-protocol", "chat") in headers
    assert ("origin", "https://example.com") in headers
    assert ("x-token", "t") in headers
    assert "authorization" in names
    assert not {"host", "upgrade", "connection", "sec-websocket-key"} & set(names)
    assert all(name == name.lower() for name in names)


def test_accept_takes_200_and_checks_the_negotiation() -> None:
    response, accepted = accept(handshake(subprotocols=["chat"]), 200, Headers([("sec-websocket-protocol", "chat")]))
    assert response.status == 200 and accepted.subprotocol == "chat"
    with pytest.raises(NegotiationError):
        accept(handshake(subprotocols=["chat"]), 200, Headers([("sec-websocket-protocol", "other")]))
    with pytest.raises(InvalidStatus) as refused:
        accept(handshake(), 101, Headers(), b"")
    assert refused.value.status == 101
    with pytest.raises(InvalidStatus) as refused:
        accept(handshake(), 404, Headers([("x", "y")]), b"nope")
    assert (refused.value.status, refused.value.body) == (404, b"nope")
