"""The server's opening handshake with byte strings: parsing, checks, negotiation, responses."""

from __future__ import annotations

import pytest

from websync.core.handshake import MAX_HEADER_BYTES, MAX_HEADERS, accept_key
from websync.core.headers import Headers
from websync.core.server_handshake import (
    InvalidRequest,
    Request,
    RequestParser,
    ServerHandshake,
    error_response,
    format_response,
)
from websync.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflate,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def request(*extra: tuple[str, str], without: str | None = None, method: str = "GET") -> Request:
    headers = Headers([(name, value) for name, value in UPGRADE if name != without])
    headers.update(extra)
    return Request(method, "/chat?room=1", headers)


def refusal(handshake: ServerHandshake, req: Request) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        handshake.negotiate(req)
    return caught.value


# -- parsing -------------------------------------------------------------------------------------


def test_parser_waits_for_the_whole_head_and_keeps_what_follows() -> None:
    parser = RequestParser()
    assert parser.receive_data(b"GET /chat HTTP/1.1\r\nHost: x\r\n") is None
    req = parser.receive_data(b"Upgrade: websocket\r\n\r\n\x81\x85")
    assert req is not None
    assert (req.method, req.path) == ("GET", "/chat")
    assert req.headers.items() == [("Host", "x"), ("Upgrade", "websocket")]
    assert parser.leftover == b"\x81\x85"


@pytest.mark.parametrize(
    "head",
    [
        b"GET /chat\r\n\r\n",
        b"GET /chat HTTP/2\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nBad Name: x\r\n\r\n",
    ],
)
def test_parser_refuses_what_is_not_an_http11_request(head: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        RequestParser().receive_data(head)
    assert caught.value.response.status == 400


def test_http10_parses_for_process_request_but_cannot_upgrade() -> None:
    parsed = RequestParser().receive_data(b"GET /healthz HTTP/1.0\r\nUpgrade: websocket\r\n\r\n")
    assert parsed is not None and parsed.version == "HTTP/1.0"
    assert refusal(ServerHandshake(), parsed).response.status == 400


def test_parser_bounds_the_head_size_before_it_ends() -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(InvalidRequest, match="longer than"):
        parser.receive_data(b"X-Filler: " + b"a" * MAX_HEADER_BYTES)


def test_parser_bounds_the_header_count() -> None:
    lines = b"".join(b"X-%d: 1\r\n" % index for index in range(MAX_HEADERS + 1))
    with pytest.raises(InvalidRequest, match=f"more than {MAX_HEADERS} headers"):
        RequestParser().receive_data(b"GET / HTTP/1.1\r\n" + lines + b"\r\n")


# -- checks --------------------------------------------------------------------------------------


def test_a_valid_request_gets_the_rfc_accept_key() -> None:
    upgrade = ServerHandshake().negotiate(request())
    response = upgrade.response
    assert response.status == 101
    assert response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3
    assert response.headers["Sec-WebSocket-Accept"] == accept_key(KEY)
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert "Sec-WebSocket-Extensions" not in response.headers
    wire = format_response(response)
    assert wire.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert wire.endswith(b"\r\n\r\n")


def test_connection_header_with_several_tokens_is_accepted() -> None:
    req = request(("Connection", "keep-alive, Upgrade"), without="Connection")
    assert ServerHandshake().negotiate(req).response.status == 101


def test_method_other_than_get_is_405() -> None:
    error = refusal(ServerHandshake(), request(method="POST"))
    assert error.response.status == 405
    assert error.response.headers["Allow"] == "GET"


@pytest.mark.parametrize("missing", ["Upgrade", "Connection"])
def test_plain_http_request_is_426_upgrade_required(missing: str) -> None:
    error = refusal(ServerHandshake(), request(without=missing))
    assert error.response.status == 426
    assert error.response.headers["Upgrade"] == "websocket"


@pytest.mark.parametrize("version", ["8", "14"])
def test_other_versions_get_426_with_the_supported_version(version: str) -> None:
    req = request(("Sec-WebSocket-Version", version), without="Sec-WebSocket-Version")
    error = refusal(ServerHandshake(), req)
    assert error.response.status == 426
    assert error.response.headers["Sec-WebSocket-Version"] == "13"


@pytest.mark.parametrize("key", ["", "not base64!", "c2hvcnQ=", KEY + "AAAA"])
def test_malformed_key_is_400(key: str) -> None:
    error = refusal(ServerHandshake(), request(("Sec-WebSocket-Key", key), without="Sec-WebSocket-Key"))
    assert error.response.status == 400


def test_two_keys_are_400() -> None:
    assert refusal(ServerHandshake(), request(("Sec-WebSocket-Key", KEY))).response.status == 400


def test_origins_allow_listed_values_only() -> None:
    handshake = ServerHandshake(origins=["https://good.example"])
    assert handshake.negotiate(request(("Origin", "https://good.example"))).response.status == 101
    assert refusal(handshake, request(("Origin", "https://evil.example"))).response.status == 403
    assert refusal(handshake, request()).response.status == 403


def test_origins_with_none_allow_requests_without_origin() -> None:
    handshake = ServerHandshake(origins=[None, "https://good.example"])
    assert handshake.negotiate(request()).response.status == 101


# -- negotiation ---------------------------------------------------------------------------------


def test_subprotocol_is_the_servers_most_preferred_among_those_offered() -> None:
    handshake = ServerHandshake(subprotocols=["v2", "v1"])
    upgrade = handshake.negotiate(request(("Sec-WebSocket-Protocol", "v1, v2")))
    assert upgrade.subprotocol == "v2"
    assert upgrade.response.headers.get_all("Sec-WebSocket-Protocol") == ["v2"]


def test_no_common_subprotocol_means_no_subprotocol_header() -> None:
    upgrade = ServerHandshake(subprotocols=["v2"]).negotiate(request(("Sec-WebSocket-Protocol", "v3")))
    assert upgrade.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in upgrade.response.headers


def test_permessage_deflate_offer_is_answered() -> None:
    handshake = ServerHandshake(extensions=[ServerPerMessageDeflate()])
    upgrade = handshake.negotiate(
        request(("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits; server_no_context_takeover"))
    )
    assert upgrade.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; server_no_context_takeover"
    [extension] = upgrade.extensions
    assert isinstance(extension, PerMessageDeflate)
    assert extension.local_no_context_takeover


def test_declined_offer_falls_back_to_the_next_one() -> None:
    handshake = ServerHandshake(extensions=[ServerPerMessageDeflate()])
    offers = "permessage-deflate; unknown_param, permessage-deflate"
    upgrade = handshake.negotiate(request(("Sec-WebSocket-Extensions", offers)))
    assert upgrade.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    assert len(upgrade.extensions) == 1


def test_offers_are_ignored_without_compression_and_unknown_ones_always() -> None:
    upgrade = ServerHandshake().negotiate(request(("Sec-WebSocket-Extensions", "permessage-deflate, x-other")))
    assert upgrade.extensions == []
    assert "Sec-WebSocket-Extensions" not in upgrade.response.headers


def test_malformed_extension_header_is_400() -> None:
    handshake = ServerHandshake(extensions=[ServerPerMessageDeflate()])
    error = refusal(handshake, request(("Sec-WebSocket-Extensions", 'permessage-deflate; a="unterminated')))
    assert error.response.status == 400


# -- refusals ------------------------------------------------------------------------------------


def test_error_response_bytes() -> None:
    wire = format_response(error_response(403, b"go away", {"X-Why": "policy"}))
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 403 Forbidden"
    assert set(lines[1:]) == {
        b"X-Why: policy",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: 7",
        b"Connection: close",
    }
    assert body == b"go away"
