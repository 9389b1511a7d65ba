"""The proxy layer without sockets: URL parsing, the environment lookup, and the CONNECT and SOCKS5
handshakes byte by byte."""

from __future__ import annotations

import base64

import pytest

from websync import InvalidHandshake, ProxyError
from websync.core.handshake import MAX_HEADER_BYTES, MAX_HEADERS
from websync.core.uri import parse_uri
from websync.net.proxy import (
    ConnectHandshake,
    Proxy,
    Socks5Handshake,
    parse_proxy,
    proxy_from_environment,
    resolve_proxy,
)

pytestmark = pytest.mark.timeout(10)

ENVIRONMENT = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy", "REQUEST_METHOD"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- proxy URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://p:3128", Proxy("http", "p", 3128)),
        ("http://p", Proxy("http", "p", 80)),
        ("https://p", Proxy("https", "p", 443)),
        ("socks5://p", Proxy("socks5", "p", 1080)),
        ("SOCKS5H://P:9050", Proxy("socks5h", "p", 9050)),
        ("p:8080", Proxy("http", "p", 8080)),
        ("http://[::1]:3128", Proxy("http", "::1", 3128)),
        ("http://us%40er:p%3Ass@p:1", Proxy("http", "p", 1, "us@er", "p:ss")),
    ],
)
def test_parse_proxy(url, expected):
    assert parse_proxy(url) == expected


@pytest.mark.parametrize("url", ["ftp://p:21", "socks4://p", "http://:8080", "http://p:99999"])
def test_parse_proxy_rejects(url):
    with pytest.raises(ValueError, match="proxy"):
        parse_proxy(url)


def test_proxy_text_and_repr_leave_the_credentials_out():
    proxy = parse_proxy("socks5://alice:hunter2@[::1]:1080")
    assert str(proxy) == "socks5://[::1]:1080"
    assert "hunter2" not in repr(proxy)
    with pytest.raises(ValueError) as info:
        parse_proxy("gopher://alice:hunter2@p")
    assert "hunter2" not in str(info.value) and "alice" not in str(info.value)


def test_resolve_proxy_setting(monkeypatch):
    uri = parse_uri("ws://example.com/")
    monkeypatch.setenv("HTTP_PROXY", "http://env:1")
    assert resolve_proxy(True, uri) == Proxy("http", "env", 1)
    assert resolve_proxy(None, uri) is None
    assert resolve_proxy("socks5://given:2", uri) == Proxy("socks5", "given", 2)
    with pytest.raises(TypeError):
        resolve_proxy(False, uri)  # type: ignore[arg-type]


# -- the environment -----------------------------------------------------------------------------


def env_proxy(url):
    proxy = proxy_from_environment(parse_uri(url))
    return None if proxy is None else proxy.host


def test_scheme_specific_variables_then_all_proxy(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "http://all:1")
    assert env_proxy("ws://h/") == env_proxy("wss://h/") == "all"
    monkeypatch.setenv("HTTP_PROXY", "http://plain:1")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:1")
    assert (env_proxy("ws://h/"), env_proxy("wss://h/")) == ("plain", "secure")
    monkeypatch.setenv("wss_proxy", "http://wss:1")
    assert env_proxy("wss://h/") == "wss"


def test_lower_case_variables_win(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:1")
    assert env_proxy("wss://h/") == "lower"


def test_no_proxy_is_read_in_either_case(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://p:1")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert env_proxy("ws://internal.example/") is None
    monkeypatch.setenv("no_proxy", "other.example")  # lower case wins
    assert env_proxy("ws://internal.example/") == "p"


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.com", "ws://example.com/", True),
        ("example.com", "ws://api.example.com/", True),  # a domain covers its subdomains
        (".example.com", "ws://api.example.com/", True),
        (".example.com", "ws://example.com/", True),  # the leading dot is ignored, as urllib does
        ("example.com", "ws://badexample.com/", False),
        ("*", "wss://anything.test/", True),
        ("a.test, example.com", "ws://example.com/", True),
        ("example.com:8080", "ws://example.com:8080/", True),
        ("example.com:8080", "ws://example.com:9090/", False),
        ("example.com:443", "wss://example.com/", True),  # the default port counts
        ("::1", "ws://[::1]:9000/", True),
        ("127.0.0.1", "ws://127.0.0.1:9000/", True),
        ("127.0.0.1", "ws://127.0.0.2:9000/", False),
    ],
)
def test_no_proxy_entries(monkeypatch, no_proxy, url, bypassed):
    monkeypatch.setenv("ALL_PROXY", "http://p:1")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (env_proxy(url) is None) is bypassed


def test_no_variables_no_proxy():
    assert env_proxy("ws://h/") is None and env_proxy("wss://h/") is None


# -- HTTP CONNECT --------------------------------------------------------------------------------


def test_connect_request_bytes():
    handshake = ConnectHandshake(parse_proxy("http://p:3128"), "example.com", 443)
    assert handshake.data_to_send() == b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    assert handshake.data_to_send() == b""  # once


def test_connect_request_ipv6_and_basic_auth():
    handshake = ConnectHandshake(parse_proxy("http://us%40er:p%3Ass@p"), "::1", 9000)
    request = handshake.data_to_send()
    credentials = base64.b64encode(b"us@er:p:ss").decode()
    assert request.startswith(b"CONNECT [::1]:9000 HTTP/1.1\r\nHost: [::1]:9000\r\n")
    assert f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode() in request


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.0 200 Connection established\r\n\r\n", b"HTTP/1.1 200 OK\r\nVia: x\r\n\r\n"]
)
def test_connect_accepted_in_pieces(answer):
    handshake = ConnectHandshake(parse_proxy("http://p"), "h", 80)
    for byte in answer[:-1]:
        assert handshake.receive_data(bytes([byte])) is False
    assert handshake.receive_data(answer[-1:]) is True
    assert handshake.response is not None and handshake.response.status == 200


@pytest.mark.parametrize("status", [401, 403, 407, 502, 503])
def test_connect_refused_carries_status_and_headers(status):
    handshake = ConnectHandshake(parse_proxy("http://u:secret@p:3128"), "h", 80)
    answer = f"HTTP/1.1 {status} No\r\nProxy-Authenticate: Basic realm=x\r\n\r\n<html>".encode()
    with pytest.raises(ProxyError) as info:
        handshake.receive_data(answer)
    assert info.value.status == status
    assert info.value.headers is not None and info.value.headers["Proxy-Authenticate"] == "Basic realm=x"
    assert str(info.value) == f"proxy http://p:3128 refused CONNECT with HTTP status {status} No"


def test_connect_proxy_closing_early():
    handshake = ConnectHandshake(parse_proxy("http://p"), "h", 80)
    handshake.receive_data(b"HTTP/1.1 200")
    with pytest.raises(ProxyError, match="closed the connection before answering"):
        handshake.receive_data(b"")


def test_connect_bytes_past_the_answer_are_refused():
    with pytest.raises(ProxyError, match="sent data before the tunnel was used"):
        ConnectHandshake(parse_proxy("http://p"), "h", 80).receive_data(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101")


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2xx OK\r\n\r\n"])
def test_connect_garbage_answer(answer):
    with pytest.raises(InvalidHandshake, match="not an HTTP response"):
        ConnectHandshake(parse_proxy("http://p"), "h", 80).receive_data(answer)


def test_connect_answer_head_limits():
    with pytest.raises(InvalidHandshake, match=f"longer than {MAX_HEADER_BYTES}"):
        ConnectHandshake(parse_proxy("http://p"), "h", 80).receive_data(
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEADER_BYTES
        )
    many = b"".join(b"X-%d: 1\r\n" % index for index in range(MAX_HEADERS + 1))
    with pytest.raises(InvalidHandshake, match=f"more than {MAX_HEADERS} headers"):
        ConnectHandshake(parse_proxy("http://p"), "h", 80).receive_data(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n")


# -- SOCKS5 --------------------------------------------------------------------------------------


def socks(url="socks5://p", host="example.com", port=443):
    return Socks5Handshake(parse_proxy(url), host, port)


def test_socks5_no_auth_with_remote_dns():
    handshake = socks()
    assert handshake.data_to_send() == b"\x05\x01\x00"  # version 5, one method: no authentication
    assert handshake.receive_data(b"\x05\x00") is False
    assert handshake.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"  # ATYP 3: the name
    assert handshake.receive_data(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04") is False
    assert handshake.receive_data(b"\x38") is True


@pytest.mark.parametrize(
    ("host", "destination"),
    [
        ("127.0.0.1", b"\x01\x7f\x00\x00\x01"),
        ("::1", b"\x04" + b"\x00" * 15 + b"\x01"),
        ("bücher.example", b"\x03\x15xn--bcher-kva.example"),
    ],
)
def test_socks5_destination_address_types(host, destination):
    handshake = socks(host=host, port=80)
    handshake.data_to_send()
    handshake.receive_data(b"\x05\x00")
    assert handshake.data_to_send() == b"\x05\x01\x00" + destination + b"\x00\x50"


def test_socks5_username_password():
    handshake = socks("socks5h://alice:pw@p")
    assert handshake.data_to_send() == b"\x05\x02\x00\x02"  # offers no-auth and username/password
    handshake.receive_data(b"\x05\x02")
    assert handshake.data_to_send() == b"\x01\x05alice\x02pw"  # RFC 1929
    handshake.receive_data(b"\x01\x00")
    assert handshake.data_to_send().startswith(b"\x05\x01\x00\x03")
    # a reply with a domain name as the bound address, all in one piece
    assert handshake.receive_data(b"\x05\x00\x00\x03\x04host\x00\x50") is True


def test_socks5_proxy_accepting_no_authentication_gets_no_credentials():
    handshake = socks("socks5://alice:pw@p")
    handshake.data_to_send()
    handshake.receive_data(b"\x05\x00")
    assert b"alice" not in handshake.data_to_send()


@pytest.mark.parametrize(
    ("url", "match"),
    [("socks5://p", "needs credentials"), ("socks5://alice:pw@p", "needs another authentication method")],
)
def test_socks5_no_acceptable_method(url, match):
    handshake = socks(url)
    handshake.data_to_send()
    with pytest.raises(ProxyError, match=f"accepts none of the offered methods.*{match}"):
        handshake.receive_data(b"\x05\xff")


def test_socks5_unoffered_method_is_refused():
    handshake = socks()
    with pytest.raises(ProxyError, match="method 2, which was not offered"):
        handshake.receive_data(b"\x05\x02")


def test_socks5_authentication_failure_and_close():
    handshake = socks("socks5://alice:secret@p")
    handshake.receive_data(b"\x05\x02")
    with pytest.raises(ProxyError, match="rejected the username and password") as info:
        handshake.receive_data(b"\x01\x01")
    assert "secret" not in str(info.value)
    closing = socks("socks5://alice:secret@p")
    closing.receive_data(b"\x05\x02")
    with pytest.raises(ProxyError, match="during authentication"):
        closing.receive_data(b"")


@pytest.mark.parametrize("reply", range(1, 10))
def test_socks5_reply_codes(reply):
    handshake = socks()
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyError, match=f"could not connect to example.com:443: .*reply {reply}") as info:
        handshake.receive_data(bytes([5, reply, 0, 1]) + b"\x00" * 6)
    assert info.value.socks_reply == reply
    assert info.value.status is None


def test_socks5_reply_code_names():
    handshake = socks()
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyError, match="connection refused"):
        handshake.receive_data(b"\x05\x05\x00\x01" + b"\x00" * 6)


def test_socks5_not_a_socks5_server():
    with pytest.raises(ProxyError, match="does not speak SOCKS5"):
        socks().receive_data(b"HTTP/1.1 400 Bad Request\r\n")


def test_socks5_bad_address_type_and_early_data():
    handshake = socks()
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(ProxyError, match="address type 9"):
        handshake.receive_data(b"\x05\x00\x00\x09\x00")
    eager = socks()
    eager.receive_data(b"\x05\x00")
    with pytest.raises(ProxyError, match="sent data before the tunnel was used"):
        eager.receive_data(b"\x05\x00\x00\x01" + b"\x00" * 6 + b"extra")


def test_socks5_limits():
    with pytest.raises(ProxyError, match="255 bytes"):
        socks(f"socks5://{'u' * 256}:pw@p").receive_data(b"\x05\x02")
    handshake = socks(host="a" * 300)
    with pytest.raises(ProxyError, match="invalid or too long for SOCKS5"):
        handshake.receive_data(b"\x05\x00")
