"""Integration tests of the opening handshake of ``websync.connect()``: subprotocols, headers,
TLS, IPv6, redirects, timeouts, and servers that answer the upgrade wrongly."""

from __future__ import annotations

import base64
import errno
import json
import queue
import socket
import ssl
import time
from typing import Any

import pytest

import websync
import websync.net.connection

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]


def _request_info(ws: websync.ClientConnection) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(ws.recv(timeout=5))
    info["headers"] = [(name.lower(), value) for name, value in info["headers"]]
    return info


def _header(info: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in info["headers"] if key == name.lower()]


# -- what the server sees and answers --------------------------------------------------------


def test_response_attributes(echo_server):
    with websync.connect(echo_server.url) as ws:
        assert ws.status == 101
        assert isinstance(ws.headers, websync.Headers)
        upgrade = ws.headers.get("upgrade")
        assert upgrade is not None and upgrade.lower() == "websocket"
        assert ws.headers.get("SEC-WEBSOCKET-ACCEPT") == ws.headers.get("sec-websocket-accept")
        server = ws.headers.get("Server")
        assert server is not None and "websockets" in server
        assert ws.headers.get_all("x-not-there") == []
        assert ("Upgrade", "websocket") in [(name.title(), value) for name, value in ws.headers.items()]
        assert ws.subprotocol is None


def test_request_line_and_host(echo_server):
    with websync.connect(echo_server.url + "/request/some/path?x=1&y=%20z") as ws:
        info = _request_info(ws)
    assert info["path"] == "/request/some/path?x=1&y=%20z"
    assert _header(info, "host") == [f"127.0.0.1:{echo_server.port}"]
    assert _header(info, "sec-websocket-version") == ["13"]


def test_custom_headers_and_origin(echo_server):
    headers = [("X-Custom", "value 1"), ("X-Multi", "a"), ("X-Multi", "b")]
    with websync.connect(echo_server.url + "/request", headers=headers, origin="https://example.com") as ws:
        info = _request_info(ws)
    assert _header(info, "x-custom") == ["value 1"]
    assert _header(info, "x-multi") == ["a", "b"]
    assert _header(info, "origin") == ["https://example.com"]


def test_headers_as_dict(echo_server):
    with websync.connect(echo_server.url + "/request", headers={"X-Token": "abc"}) as ws:
        info = _request_info(ws)
    assert _header(info, "x-token") == ["abc"]
    assert _header(info, "origin") == []


def test_userinfo_sent_as_basic_auth(echo_server):
    url = f"ws://alice:p%40ss:word@127.0.0.1:{echo_server.port}/request"
    with websync.connect(url) as ws:
        info = _request_info(ws)
    assert _header(info, "authorization") == ["Basic " + base64.b64encode(b"alice:p@ss:word").decode()]
    assert _header(info, "host") == [f"127.0.0.1:{echo_server.port}"], "no userinfo in Host"


def test_no_authorization_without_userinfo(echo_server):
    with websync.connect(echo_server.url + "/request") as ws:
        assert _header(_request_info(ws), "authorization") == []


@pytest.mark.parametrize(
    "offered, expected", [(["chat"], "chat"), (["superchat", "chat"], None), (["v2.json"], "v2.json")]
)
def test_subprotocol_chosen(websockets_server, offered, expected):
    server = websockets_server(subprotocols=["chat", "superchat", "v2.json"])
    with websync.connect(server.url + "/request", subprotocols=offered) as ws:
        info = _request_info(ws)
        assert ws.subprotocol == info["subprotocol"]
        assert ws.subprotocol in offered
        if expected is not None:
            assert ws.subprotocol == expected
    assert _header(info, "sec-websocket-protocol") == [", ".join(offered)]


def test_no_subprotocol_offered(echo_server):
    with websync.connect(echo_server.url + "/request") as ws:
        info = _request_info(ws)
        assert ws.subprotocol is None
    assert _header(info, "sec-websocket-protocol") == []


def test_server_choosing_unoffered_subprotocol_is_refused(websockets_server):
    server = websockets_server(force_subprotocol="evil")
    with pytest.raises(websync.NegotiationError, match="evil"):
        websync.connect(server.url, subprotocols=["chat"])
    with pytest.raises(websync.NegotiationError):
        websync.connect(server.url)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(websockets_server):
    return websockets_server(tls=True)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_wss_with_trusted_ca(tls_server, client_ssl_context, host):
    with websync.connect(f"wss://{host}:{tls_server.port}/", ssl=client_ssl_context) as ws:
        ws.send("secret")
        assert ws.recv(timeout=5) == "secret"
        ws.send(bytes(300_000))
        assert ws.recv(timeout=5) == bytes(300_000)


def test_wss_big_message(tls_server, client_ssl_context):
    payload = bytes(range(256)) * 8192  # 2 MiB
    with websync.connect(tls_server.url, ssl=client_ssl_context, max_size=None, compression=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


def test_wss_reads_what_tls_decrypted_where_a_poll_cannot_see_it(tls_server, client_ssl_context, monkeypatch):
    # A read buffer smaller than a TLS record leaves the rest of the record decrypted inside the
    # SSL object, where polling the socket sees nothing: both readers (a blocked recv() and the
    # worker serving a handler) must take it without waiting for more bytes from the network.
    monkeypatch.setattr(websync.net.connection, "READ_SIZE", 512)
    message = "x" * 12_000
    with websync.connect(tls_server.url, ssl=client_ssl_context, compression=None) as ws:
        ws.send(message)
        assert ws.recv(timeout=5) == message
    echoes: queue.SimpleQueue[str | bytes] = queue.SimpleQueue()

    class Echoed(websync.Handler):
        url = tls_server.url

        def handle_connect(self, response: websync.Response) -> websync.Text:
            return websync.Text(message)

        def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
            echoes.put(frame.data)

    worker = websync.start(Echoed(), ssl=client_ssl_context, compression=None)
    try:
        assert echoes.get(timeout=5) == message
    finally:
        worker.stop()


def test_wss_server_hostname_override(tls_server, client_ssl_context):
    with websync.connect(tls_server.url, ssl=client_ssl_context, server_hostname="localhost") as ws:
        ws.send("sni")
        assert ws.recv(timeout=5) == "sni"


def test_wss_wrong_hostname_refused(tls_server, client_ssl_context):
    with pytest.raises(websync.TransportError) as info:
        websync.connect(tls_server.url, ssl=client_ssl_context, server_hostname="example.com")
    assert isinstance(info.value, OSError)
    assert "TLS" in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, ssl.SSLCertVerificationError)
    assert "hostname mismatch" in cause.verify_message.lower()


def test_wss_wrong_hostname_error_names_the_cause(tls_server, client_ssl_context):
    with pytest.raises(websync.TransportError) as info:
        websync.connect(tls_server.url, ssl=client_ssl_context, server_hostname="example.com")
    assert "hostname mismatch" in str(info.value).lower()


def test_wss_untrusted_certificate_refused_by_default_context(tls_server):
    # the default context trusts certifi's bundle, which does not contain the test CA
    with pytest.raises(websync.TransportError) as info:
        websync.connect(f"wss://localhost:{tls_server.port}/")
    message = str(info.value).lower()
    assert "certificate" in message and "verif" in message


def test_wss_untrusted_certificate_names_the_reason(tls_server):
    with pytest.raises(websync.TransportError) as info:
        websync.connect(f"wss://localhost:{tls_server.port}/")
    assert "self-signed certificate" in str(info.value) or "unable to get local issuer" in str(info.value)


def test_wss_to_plain_server_fails_fast(echo_server, client_ssl_context):
    start = time.monotonic()
    with pytest.raises(websync.TransportError, match="TLS"):
        websync.connect(f"wss://127.0.0.1:{echo_server.port}/", ssl=client_ssl_context, open_timeout=5)
    assert time.monotonic() - start < 3


def test_ws_to_tls_server_fails(tls_server):
    with pytest.raises(websync.InvalidHandshake):
        websync.connect(f"ws://127.0.0.1:{tls_server.port}/", open_timeout=2)


# -- IPv6 --------------------------------------------------------------------------------------


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


ipv6 = pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")


@ipv6
def test_ipv6_loopback(websockets_server):
    server = websockets_server(host="::1")
    assert server.url.startswith("ws://[::1]:")
    with websync.connect(server.url + "/request") as ws:
        info = _request_info(ws)
        ws.send("over v6")
        assert ws.recv(timeout=5) == "over v6"
    assert _header(info, "host") == [f"[::1]:{server.port}"]


@ipv6
def test_ipv6_wss(websockets_server, client_ssl_context):
    server = websockets_server(host="::1", tls=True)
    with websync.connect(server.url, ssl=client_ssl_context) as ws:
        ws.send("v6 and tls")
        assert ws.recv(timeout=5) == "v6 and tls"


# -- failures before any server answers ------------------------------------------------------


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(websync.TransportError) as info:
        websync.connect(f"ws://127.0.0.1:{port}/")
    assert info.value.errno == errno.ECONNREFUSED
    assert str(port) in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "ws://", "ws://127.0.0.1:99999/", "ws://h/#frag"])
def test_invalid_uri(url):
    with pytest.raises(websync.InvalidURI):
        websync.connect(url)


def test_open_timeout_bounds_silent_peer(raw_server):
    def script(peer):
        peer.read_request()
        peer.wait_stop()

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout) as info:
        websync.connect(server.url, open_timeout=0.3)
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 1.5
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, websync.InvalidHandshake)


def test_open_timeout_bounds_peer_silent_mid_response(raw_server):
    def script(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
        peer.wait_stop()

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout):
        websync.connect(server.url, open_timeout=0.3)
    assert time.monotonic() - start < 1.5


def test_open_timeout_bounds_silent_tls_peer(raw_server, client_ssl_context):
    server = raw_server(lambda peer: peer.wait_stop())
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout):
        websync.connect(f"wss://127.0.0.1:{server.port}/", ssl=client_ssl_context, open_timeout=0.3)
    assert time.monotonic() - start < 1.5


def test_open_timeout_bounds_slow_drip(raw_server):
    # a peer that sends a byte now and then must not extend the deadline
    def script(peer):
        peer.read_request()
        for byte in b"HTTP/1.1 101 Switching Protocols\r\n" * 100:
            if peer.server.stopping.wait(0.05):
                return
            peer.send(bytes([byte]))

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout):
        websync.connect(server.url, open_timeout=0.4)
    assert time.monotonic() - start < 1.5


# -- bad answers to the upgrade ----------------------------------------------------------------


def test_wrong_accept_key(raw_server):
    server = raw_server(lambda peer: peer.handshake(accept=base64.b64encode(b"x" * 20).decode()))
    with pytest.raises(websync.InvalidHeader, match="Sec-WebSocket-Accept"):
        websync.connect(server.url)


def test_missing_upgrade_header(raw_server):
    def script(peer):
        request = peer.read_request()
        from peers.raw_server import accept_key

        key = accept_key(request.headers["sec-websocket-key"])
        peer.respond("101 Switching Protocols", [("Connection", "Upgrade"), ("Sec-WebSocket-Accept", key)])

    server = raw_server(script)
    with pytest.raises(websync.InvalidHeader, match="Upgrade"):
        websync.connect(server.url)


def test_status_200_is_refused(raw_server):
    def script(peer):
        peer.read_request()
        peer.respond("200 OK", [("Content-Length", "5"), ("Content-Type", "text/plain")], b"hello")
        peer.wait_stop()

    server = raw_server(script)
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url)
    assert info.value.status == 200
    assert info.value.body == b"hello"
    assert "200" in str(info.value)


def test_status_500_with_body(raw_server):
    body = b"<h1>Internal Server Error</h1>"

    def script(peer):
        peer.read_request()
        peer.respond(
            "500 Internal Server Error", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))], body
        )
        peer.wait_stop()

    server = raw_server(script)
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url)
    assert info.value.status == 500
    assert info.value.body == body
    assert info.value.headers.get("content-type") == "text/html"


def test_status_500_body_until_eof(raw_server):
    def script(peer):
        peer.read_request()
        peer.respond("500 Internal Server Error", [("Connection", "close")], b"no length")

    server = raw_server(script)
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url)
    assert (info.value.status, info.value.body) == (500, b"no length")


def test_real_server_refusal(websockets_server):
    # a websockets server that requires a subprotocol answers 400 when none matches
    server = websockets_server(subprotocols=["chat"])
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url, subprotocols=["other"])
    assert info.value.status == 400
    assert b"subprotocol" in info.value.body.lower()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n",
    ],
)
def test_garbage_instead_of_http(raw_server, answer):
    def script(peer):
        peer.read_request()
        peer.send(answer)
        peer.wait_stop()

    server = raw_server(script)
    with pytest.raises(websync.InvalidHandshake) as info:
        websync.connect(server.url, open_timeout=5)
    assert not isinstance(info.value, (websync.InvalidStatus, websync.OpenTimeout))


def test_peer_closes_mid_handshake(raw_server):
    def script(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 101 Switching")

    server = raw_server(script)
    with pytest.raises(websync.InvalidHandshake, match="closed"):
        websync.connect(server.url, open_timeout=5)


def test_peer_closes_at_once(raw_server):
    server = raw_server(lambda peer: None)
    with pytest.raises((websync.InvalidHandshake, websync.TransportError)):
        websync.connect(server.url, open_timeout=5)


def test_endless_response_head_is_bounded(raw_server):
    def script(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
        try:
            while not peer.server.stopping.is_set():
                peer.send(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except OSError:
            pass

    server = raw_server(script)
    with pytest.raises(websync.InvalidHandshake, match="longer"):
        websync.connect(server.url, open_timeout=5)


def test_unoffered_extension_is_refused(raw_server):
    server = raw_server(lambda peer: peer.handshake([("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")]))
    with pytest.raises(websync.NegotiationError, match="x-webkit-deflate-frame"):
        websync.connect(server.url)


def test_deflate_when_compression_off_is_refused(raw_server):
    server = raw_server(lambda peer: peer.handshake([("Sec-WebSocket-Extensions", "permessage-deflate")]))
    with pytest.raises(websync.NegotiationError):
        websync.connect(server.url, compression=None)


def test_frames_in_the_same_segment_as_101(raw_server):
    def script(peer):
        request = peer.read_request()
        from peers.raw_server import PeerConnection, accept_key

        key = accept_key(request.headers["sec-websocket-key"])
        head = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {key}\r\n\r\n"
        ).encode()
        peer.send(head + PeerConnection.encode_frame(0x1, b"early") + PeerConnection.encode_frame(0x2, b"bird"))
        return peer.expect_close(echo=True)

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        assert ws.recv(timeout=5) == "early"
        assert ws.recv(timeout=5) == b"bird"
    assert server.result().close_code == 1000


# -- redirects ---------------------------------------------------------------------------------


def test_redirect_chain(raw_server, echo_server):
    final = echo_server.url + "/request"
    second = raw_server(
        lambda peer: (peer.read_request(), peer.respond("307 Temporary Redirect", [("Location", final)]))
    )

    def first_script(peer):
        request = peer.read_request()
        if request.path == "/start":
            peer.respond("301 Moved Permanently", [("Location", "/middle"), ("Content-Length", "0")])
        else:  # a relative redirect resolved against the current URL, then another server
            peer.respond("302 Found", [("Location", second.url + "/ignored")])

    first = raw_server(first_script)
    with websync.connect(first.url + "/start", headers={"X-Kept": "yes"}) as ws:
        info = _request_info(ws)
        ws.send("arrived")
        assert ws.recv(timeout=5) == "arrived"
    assert [first.requests.get(timeout=1).path for _ in range(2)] == ["/start", "/middle"]
    assert second.requests.get(timeout=1).path == "/ignored"
    assert info["path"] == "/request"
    assert _header(info, "x-kept") == ["yes"]
    assert _header(info, "host") == [f"127.0.0.1:{echo_server.port}"]


@pytest.mark.parametrize(
    "status",
    ["301 Moved Permanently", "302 Found", "303 See Other", "307 Temporary Redirect", "308 Permanent Redirect"],
)
def test_each_redirect_status_is_followed(raw_server, echo_server, status):
    server = raw_server(lambda peer: (peer.read_request(), peer.respond(status, [("Location", echo_server.url)])))
    with websync.connect(server.url) as ws:
        ws.send("ok")
        assert ws.recv(timeout=5) == "ok"


@pytest.mark.parametrize("max_redirects", [0, 2, 5])
def test_redirect_loop_stops_after_max_redirects(raw_server, max_redirects):
    server = raw_server(lambda peer: (peer.read_request(), peer.respond("302 Found", [("Location", "/again")])))
    with pytest.raises(websync.InvalidHandshake, match="redirect") as info:
        websync.connect(server.url, max_redirects=max_redirects)
    assert not isinstance(info.value, websync.InvalidStatus)
    requests = []
    while not server.requests.empty():
        requests.append(server.requests.get())
    assert len(requests) == max_redirects + 1


def test_redirect_loop_default_max_redirects(raw_server):
    server = raw_server(lambda peer: (peer.read_request(), peer.respond("302 Found", [("Location", "/loop")])))
    with pytest.raises(websync.InvalidHandshake, match="redirect"):
        websync.connect(server.url)
    assert server.connections == 6


def test_redirect_not_followed_when_disabled(raw_server, echo_server):
    server = raw_server(lambda peer: (peer.read_request(), peer.respond("302 Found", [("Location", echo_server.url)])))
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url, follow_redirects=False)
    assert info.value.status == 302
    assert info.value.headers.get("location") == echo_server.url


def test_redirect_without_location_is_a_refusal(raw_server):
    server = raw_server(lambda peer: (peer.read_request(), peer.respond("302 Found", [("Content-Length", "0")])))
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url)
    assert info.value.status == 302


def test_redirect_http_scheme_maps_to_ws(raw_server, echo_server):
    target = f"http://127.0.0.1:{echo_server.port}/"
    server = raw_server(lambda peer: (peer.read_request(), peer.respond("302 Found", [("Location", target)])))
    with websync.connect(server.url) as ws:
        ws.send("mapped")
        assert ws.recv(timeout=5) == "mapped"


def test_wss_to_ws_redirect_is_refused(raw_server, server_ssl_context, client_ssl_context):
    plain = raw_server(lambda peer: peer.handshake())
    secure = raw_server(
        lambda peer: (peer.read_request(), peer.respond("302 Found", [("Location", plain.url + "/")])),
        ssl_context=server_ssl_context,
    )
    with pytest.raises(websync.InvalidHandshake, match="insecure"):
        websync.connect(secure.url, ssl=client_ssl_context)
    assert plain.connections == 0
    assert secure.requests.get(timeout=1).path == "/"


def test_redirects_share_one_open_timeout(raw_server):
    # each hop is quick but the chain as a whole must respect open_timeout
    def script(peer):
        peer.read_request()
        peer.server.stopping.wait(0.15)
        peer.respond("302 Found", [("Location", "/next")])

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout):
        websync.connect(server.url, open_timeout=0.4, max_redirects=50)
    assert time.monotonic() - start < 1.5


def test_status_500_chunked_body_on_kept_alive_connection(raw_server):
    def script(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nerror\r\n0\r\n\r\n")
        peer.wait_stop()

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url, open_timeout=0.5)
    assert time.monotonic() - start < 0.45
    assert info.value.status == 500
    assert info.value.body == b"error"


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_status_without_body_on_kept_alive_connection(raw_server, status):
    def script(peer):
        peer.read_request()
        peer.respond(status)
        peer.wait_stop()

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(server.url, open_timeout=0.5)
    assert time.monotonic() - start < 0.45
    assert info.value.status == int(status[:3])


def test_redirect_with_empty_body_on_kept_alive_connection(raw_server, echo_server):
    def script(peer):
        peer.read_request()
        peer.respond("302 Found", [("Location", echo_server.url), ("Content-Length", "0")])
        peer.wait_stop()

    server = raw_server(script)
    start = time.monotonic()
    with websync.connect(server.url, open_timeout=5) as ws:
        ws.send("followed")
        assert ws.recv(timeout=5) == "followed"
    assert time.monotonic() - start < 2
