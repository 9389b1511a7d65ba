"""Issue 22, TLS: ``serve(..., ssl=context)`` serves wss:// to clients we did not write (headless
Chromium trusting the test key, npm ``ws``, ``websockets``) and to websync's own; the handshake runs
in the connection's worker thread, so a client that stalls mid-TLS is dropped at the handshake
timeout and holds up nobody else; a context offering h2 by ALPN never gets to speak it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from peers import node_ws
from peers.chromium import Chromium, chromium_binary
from websockets.asyncio.client import connect as async_connect

import websync
from websync import Binary, ServerHandler, Text

pytestmark = pytest.mark.timeout(90)

HANDSHAKE_TIMEOUT = 1.5


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Any:
        return frame


@pytest.fixture
def server(server_ssl_context: ssl.SSLContext) -> Iterator[websync.Server]:
    with websync.serve(Echo, ssl=server_ssl_context, handshake_timeout=HANDSHAKE_TIMEOUT, close_timeout=2) as running:
        yield running


def wss(server: websync.Server, host: str = "127.0.0.1") -> str:
    return f"wss://{host}:{server.port}/"


def spki_hash(certfile: Path) -> str:
    """What ``--ignore-certificate-errors-spki-list`` takes: base64 of the SHA-256 of the key's SPKI."""
    key = serialization.load_pem_private_key(certfile.read_bytes(), None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def chromium_trusting_test_key(tmp_path_factory: pytest.TempPathFactory, tls_certfile: Path) -> Iterator[Chromium]:
    if chromium_binary() is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    browser = Chromium(
        tmp_path_factory.mktemp("chromium-tls"), [f"--ignore-certificate-errors-spki-list={spki_hash(tls_certfile)}"]
    )
    yield browser
    browser.close()


ECHO_IN_BROWSER = """
new Promise((resolve) => {
  const ws = new WebSocket(%r);
  const timer = setTimeout(() => resolve({timeout: true}), 15000);
  ws.onopen = () => ws.send("hello over wss");
  ws.onmessage = (event) => { ws.close(1000); resolve({echo: event.data}); clearTimeout(timer); };
  ws.onerror = () => { clearTimeout(timer); resolve({error: true}); };
})
"""


async def echo_each(url: str, context: ssl.SSLContext, messages: Sequence[str | bytes]) -> list[str | bytes]:
    """Each message over its own websockets connection, all at once; the echoes in order.

    websockets' asyncio client, not its sync client: the sync client's reader thread is already
    in ``SSLSocket.recv`` when the caller's thread writes the upgrade request, and OpenSSL allows
    no concurrent use of one SSL object. When that read processes the server's TLS 1.3 session
    tickets during the write, the request is lost now and then (more often under load): the
    server sees no request and drops the client at its handshake timeout. asyncio drives each
    connection's TLS from one thread.
    """

    async def echo(message: str | bytes) -> str | bytes:
        async with async_connect(url, ssl=context, open_timeout=5) as ws:
            await ws.send(message)
            return await asyncio.wait_for(ws.recv(), 5)

    return list(await asyncio.gather(*(echo(message) for message in messages)))


def test_websockets_client_echoes_over_wss(server: websync.Server, client_ssl_context: ssl.SSLContext) -> None:
    assert asyncio.run(echo_each(wss(server), client_ssl_context, ["over tls"])) == ["over tls"]
    big = b"\x00" * 100_000
    assert asyncio.run(echo_each(wss(server, "localhost"), client_ssl_context, [big])) == [big]  # with SNI


def test_websync_client_echoes_over_wss(server: websync.Server, client_ssl_context: ssl.SSLContext) -> None:
    with websync.connect(wss(server), ssl=client_ssl_context) as ws:
        ws.send("websync to websync")
        assert ws.recv(timeout=5) == "websync to websync"
        assert ws.close_code is None


@pytest.mark.usefixtures("node_ws")
def test_node_ws_client_over_wss(server: websync.Server, tls_ca: Any, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca))
    with websync.serve(Echo, ssl=server.options.ssl, max_size=1000, close_timeout=2) as small:
        outcome = node_ws.send_and_await_close(wss(small, "localhost"), 2000, ca_file=str(ca))
    assert outcome.opened, outcome
    assert outcome.code == 1009, outcome  # it got the frame only a TLS connection can carry


def test_chromium_echoes_over_wss(server: websync.Server, chromium_trusting_test_key: Chromium) -> None:
    result = chromium_trusting_test_key.evaluate(ECHO_IN_BROWSER % wss(server))
    assert result == {"echo": "hello over wss"}


def test_a_client_stalling_mid_tls_is_bounded_and_holds_up_nobody(
    server: websync.Server, client_ssl_context: ssl.SSLContext
) -> None:
    """Five clients connect, upgrade and echo while three others stall (silent, or half a
    ClientHello) and still hold their connections; each stalled one is dropped at the handshake
    timeout, and every worker ends."""
    started = time.monotonic()
    stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    stalled[1].sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello, then nothing
    try:
        messages = [f"client {i}" for i in range(5)]
        assert asyncio.run(echo_each(wss(server), client_ssl_context, messages)) == messages
        for sock in stalled:  # nobody waited for the stalled ones: the server has not dropped them yet
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
        for sock in stalled:
            sock.settimeout(HANDSHAKE_TIMEOUT + 3)
            assert sock.recv(100) == b""  # dropped by the server at the handshake timeout
        assert HANDSHAKE_TIMEOUT <= time.monotonic() - started < HANDSHAKE_TIMEOUT + 2
        for worker in server.connections:
            assert worker.join(2), worker
    finally:
        for sock in stalled:
            sock.close()


def test_an_h2_alpn_context_never_speaks_h2(
    server_ssl_context: ssl.SSLContext, tls_certfile: Path, tls_ca: Any
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls_certfile))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with websync.serve(Echo, ssl=context, close_timeout=2) as running:
        client = ssl.create_default_context()
        tls_ca.configure_trust(client)
        client.set_alpn_protocols(["h2"])
        with (
            socket.create_connection(("127.0.0.1", running.port)) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
            tls.settimeout(5)
            assert tls.recv(100) == b""  # refused: websync speaks HTTP/1.1 only
        plain = ssl.create_default_context()
        tls_ca.configure_trust(plain)
        with websync.connect(f"wss://localhost:{running.port}/", ssl=plain) as ws:  # no ALPN: served
            ws.send("fine")
            assert ws.recv(timeout=5) == "fine"
