"""Security defaults: TLS 1.2 or newer with verification, bounded handshakes, and credentials kept
out of exception messages, reprs and trace lines. (Redirect rules are tested in
test_client_handshake.py: wss:// to ws:// refused, max_redirects, one open_timeout.)"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import warnings

import pytest

import websync
from websync.core.handshake import MAX_HEADERS, ResponseParser
from websync.core.headers import Headers
from websync.core.uri import parse_uri
from websync.net.transport import default_ssl_context

pytestmark = pytest.mark.timeout(15)

SECRET = "hunter2-secret"


def test_default_context_verifies_and_requires_tls_1_2():
    context = default_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.fixture
def tls_1_1_server(tls_ca):
    """A TLS server that speaks TLS 1.0/1.1 only (OpenSSL's security level lowered for it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("localhost").configure_cert(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                context.wrap_socket(conn, server_side=True).close()
            except OSError:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(5)


def test_tls_1_1_server_is_refused(tls_1_1_server, tls_ca):
    # control: the server does complete a TLS 1.1 handshake with a client that allows it
    permissive = ssl.create_default_context()
    tls_ca.configure_trust(permissive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    with permissive.wrap_socket(
        socket.create_connection(("127.0.0.1", tls_1_1_server)), server_hostname="localhost"
    ) as tls:
        assert tls.version() == "TLSv1.1"
    with pytest.raises(websync.TransportError, match="(?i)protocol.version|unsupported.protocol"):
        websync.connect(f"wss://localhost:{tls_1_1_server}/", open_timeout=5, proxy=None)


def test_response_with_too_many_headers_is_refused(raw_server):
    many = "".join(f"X-{index}: 1\r\n" for index in range(MAX_HEADERS + 1))
    server = raw_server(lambda peer: (peer.read_request(), peer.send(f"HTTP/1.1 101 OK\r\n{many}\r\n".encode())))
    with pytest.raises(websync.InvalidHandshake, match=f"more than {MAX_HEADERS} headers"):
        websync.connect(server.url, open_timeout=5)


def test_response_parser_allows_the_header_limit_exactly():
    lines = "".join(f"X-{index}: 1\r\n" for index in range(MAX_HEADERS))
    response = ResponseParser().receive_data(f"HTTP/1.1 101 OK\r\n{lines}\r\n".encode())
    assert response is not None and len(response.headers) == MAX_HEADERS


# -- credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [f"http://user:{SECRET}@h/", f"ws://user:{SECRET}@h/#x", f"ws://user:{SECRET}@h:99999/", f"ws://user:{SECRET}@/"],
)
def test_invalid_url_errors_leave_out_credentials(url):
    with pytest.raises(websync.InvalidURI) as info:
        websync.connect(url)
    assert SECRET not in str(info.value) and "<credentials>@" in str(info.value)


def test_uri_and_headers_reprs_leave_out_credentials():
    uri = parse_uri(f"wss://user:{SECRET}@h/")
    assert SECRET not in repr(uri) and SECRET not in str(uri)
    headers = Headers([("Authorization", SECRET), ("Cookie", SECRET), ("Proxy-Authorization", SECRET)])
    assert SECRET not in repr(headers)


def test_credentials_stay_out_of_traces_and_errors(raw_server, caplog):
    """A refused upgrade with credentials in the URL, headers and proxy URL: the trace lines show
    the request headers redacted, and neither the log nor the exception shows a secret."""
    requests = []

    def script(peer):
        requests.append(peer.read_request())
        peer.send(
            b"HTTP/1.1 403 Forbidden\r\nSet-Cookie: session=" + SECRET.encode() + b"\r\nContent-Length: 0\r\n\r\n"
        )

    server = raw_server(script)
    caplog.set_level(logging.DEBUG, logger="websync")
    with pytest.raises(websync.InvalidStatus) as info:
        websync.connect(
            server.url.replace("ws://", f"ws://user:{SECRET}@"),
            headers={"Cookie": f"c={SECRET}", "X-Api-Key": "visible"},
            trace=True,
            proxy=None,
        )
    assert requests[0].headers["cookie"] == f"c={SECRET}"  # sent…
    assert "authorization" in requests[0].headers
    assert "X-Api-Key" in caplog.text and "<redacted>" in caplog.text  # …traced, but redacted
    assert SECRET not in caplog.text
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.headers)
