"""The extension interface from ``connect``/``start``: a configured ``ClientPerMessageDeflate`` as
``compression`` and custom factories as ``extensions``, negotiated with real peers (``websockets``,
npm ``ws``) and with websync's own server."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from peers.node_ws import NODE_DIR
from peers.spawn import Spawned

import websync
from websync.core.errors import NegotiationError
from websync.core.frames import WireFrame
from websync.core.protocol import Role
from websync.extensions import (
    ClientExtensionFactory,
    ClientPerMessageDeflate,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
    ServerPerMessageDeflate,
)
from websync.extensions.factories import extension_factories

pytestmark = pytest.mark.timeout(30)

BLOCK = os.urandom(2048)
FAR_REPEATS = BLOCK * 8
"""Matches 2 KiB back: a compressor with a larger window than negotiated (9 or 10 bits: 512 or
1024 bytes) would emit distances the peer's decompressor refuses."""


def extensions_header(ws: websync.ClientConnection) -> str:
    return ws.headers.get("Sec-WebSocket-Extensions") or ""


def sent_bytes(ws: websync.ClientConnection) -> int:
    return int(websync.statistics(ws.worker)["bytes_out"] or 0)


# -- permessage-deflate with parameters, against websockets -------------------------------------


def test_configured_deflate_offer_is_negotiated_with_websockets(websockets_server):
    server = websockets_server()
    compression = ClientPerMessageDeflate(
        server_max_window_bits=10,
        client_max_window_bits=9,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        compress_settings={"level": 9, "memLevel": 4},
    )
    with websync.connect(f"{server.url}/request", compression=compression) as ws:
        request = json.loads(ws.recv(timeout=5))
        offer = {name.lower(): value for name, value in request["headers"]}["sec-websocket-extensions"]
        assert offer == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=9"
        )
        answer = extensions_header(ws)
        for parameter in ("server_no_context_takeover", "client_no_context_takeover"):
            assert parameter in answer
        assert "server_max_window_bits=10" in answer and "client_max_window_bits=9" in answer
        for _ in range(3):  # a 9-bit window both ways, no context taken over: the echo decodes
            ws.send(FAR_REPEATS)
            assert ws.recv(timeout=5) == FAR_REPEATS
        assert ws.extensions == ["permessage-deflate"]


def test_default_offer_honours_a_websockets_server_s_settings(websockets_server):
    settings = {
        "server_max_window_bits": 11,
        "client_max_window_bits": 10,
        "server_no_context_takeover": True,
        "client_no_context_takeover": True,
        "compress_settings": {"memLevel": 4},
    }
    server = websockets_server(deflate=json.dumps(settings))
    with websync.connect(server.url) as ws:
        answer = extensions_header(ws)
        assert "server_max_window_bits=11" in answer and "client_max_window_bits=10" in answer, answer
        for _ in range(3):  # the server decompresses with 10 bits: ours must compress within them
            ws.send(FAR_REPEATS)
            assert ws.recv(timeout=5) == FAR_REPEATS


def test_zlib_level_and_context_takeover_shape_what_goes_out(echo_server):
    text = b"websync " * 8192  # 64 KiB, very compressible
    noise = os.urandom(1024)  # within the 12-bit window websockets asks for by default
    sizes: dict[str, list[int]] = {}
    for label, compression in [
        ("level 0", ClientPerMessageDeflate(compress_settings={"level": 0})),
        ("level 9", ClientPerMessageDeflate(compress_settings={"level": 9})),
        ("no takeover", ClientPerMessageDeflate(client_no_context_takeover=True)),
    ]:
        with websync.connect(echo_server.url, compression=compression, max_size=None) as ws:
            sizes[label] = []
            for message in (text, noise, noise):
                before = sent_bytes(ws)
                ws.send(message)
                assert ws.recv(timeout=5) == message
                sizes[label].append(sent_bytes(ws) - before)
    print(f"\nbytes on the wire for 64 KiB text, 1 KiB noise twice: {sizes}")
    assert sizes["level 0"][0] > len(text)  # stored blocks
    assert sizes["level 9"][0] < len(text) // 50
    assert sizes["level 9"][2] < len(noise) // 10  # the second copy refers to the first
    assert sizes["no takeover"][2] > len(noise)  # each message starts afresh


# -- permessage-deflate with parameters, against npm ws ------------------------------------------


@pytest.fixture(scope="module")
def node_ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``node_ws_server(perMessageDeflate)``: npm ws's echo server with those deflate options."""
    from peers.node_ws import node_ws_available

    missing = node_ws_available()
    if missing:
        pytest.skip(missing)
    servers: list[Spawned] = []
    logs = tmp_path_factory.mktemp("node-ws-server")

    def start(options: Any) -> Spawned:
        argv = ["node", str(NODE_DIR / "ws_server.js"), json.dumps(options)]
        servers.append(Spawned(argv, r"PORT (\d+)", logs / f"{len(servers)}.log"))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_node_ws_server_settings_are_honoured(node_ws_server):
    server = node_ws_server(
        {
            "serverMaxWindowBits": 10,
            "clientMaxWindowBits": 9,
            "serverNoContextTakeover": True,
            "clientNoContextTakeover": True,
            "zlibDeflateOptions": {"level": 1, "memLevel": 4},
            "threshold": 0,
        }
    )
    with websync.connect(f"ws://127.0.0.1:{server.port}/") as ws:
        answer = extensions_header(ws)
        assert "server_max_window_bits=10" in answer and "client_max_window_bits=9" in answer, answer
        assert "server_no_context_takeover" in answer and "client_no_context_takeover" in answer
        for _ in range(3):
            ws.send(FAR_REPEATS)
            assert ws.recv(timeout=5) == FAR_REPEATS


def test_an_8_bit_window_offer_is_negotiated_with_node_ws(node_ws_server):
    server = node_ws_server({"threshold": 0})
    compression = ClientPerMessageDeflate(server_max_window_bits=8, client_max_window_bits=8)
    with websync.connect(f"ws://127.0.0.1:{server.port}/", compression=compression) as ws:
        answer = extensions_header(ws)
        assert "server_max_window_bits=8" in answer and "client_max_window_bits=8" in answer, answer
        for _ in range(3):
            ws.send(FAR_REPEATS)
            assert ws.recv(timeout=5) == FAR_REPEATS


# -- a custom extension, with websync's own server -----------------------------------------------


class Xor(Extension):
    """XORs every data payload with one byte: not useful, but visible on the wire."""

    name = "x-websync-xor"

    def __init__(self, key: int) -> None:
        self.key = key
        self.encoded = self.decoded = 0

    def _xor(self, frame: WireFrame) -> WireFrame:
        return replace(frame, payload=bytes(byte ^ self.key for byte in frame.payload))

    def encode(self, frame: WireFrame) -> WireFrame:
        if frame.opcode.is_control:
            return frame
        self.encoded += 1
        return self._xor(frame)

    def decode(self, frame: WireFrame, *, max_size: int | None) -> WireFrame:
        if frame.opcode.is_control:
            return frame
        self.decoded += 1
        return self._xor(frame)


class ClientXor(ClientExtensionFactory):
    name = Xor.name

    def __init__(self, key: int) -> None:
        self.key = key
        self.made: list[Xor] = []

    def offer(self) -> ExtensionParams:
        return [("key", str(self.key))]

    def accept(self, params: ExtensionParams, accepted: Sequence[Extension]) -> Extension:
        if params != [("key", str(self.key))]:
            raise NegotiationError(f"unexpected {params}")
        self.made.append(Xor(self.key))
        return self.made[-1]


class ServerXor(ServerExtensionFactory):
    name = Xor.name

    def __init__(self) -> None:
        self.made: list[Xor] = []

    def negotiate(self, params: ExtensionParams, accepted: Sequence[Extension]) -> tuple[ExtensionParams, Extension]:
        key = int(dict(params)["key"] or 0)
        self.made.append(Xor(key))
        return [("key", str(key))], self.made[-1]


class Echo(websync.ServerHandler):
    seen: ClassVar[list[str | bytes]] = []

    def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
        Echo.seen.append(frame.data)
        return frame


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_custom_extension_with_websync_server(compression):
    server_xor, client_xor = ServerXor(), ClientXor(0x5A)
    Echo.seen = []
    with websync.serve(Echo, port=0, extensions=[server_xor]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with websync.connect(url, compression=compression, extensions=[client_xor]) as ws:
            assert ws.extensions == ([] if compression is None else ["permessage-deflate"]) + ["x-websync-xor"]
            assert f"{Xor.name}; key=90" in extensions_header(ws)
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
    assert Echo.seen == ["hello"]  # the server's handler got the plain text
    assert (client_xor.made[0].encoded, client_xor.made[0].decoded) == (1, 1)
    assert (server_xor.made[0].encoded, server_xor.made[0].decoded) == (1, 1)


def test_custom_extension_from_start(spawn):
    server_xor, client_xor = ServerXor(), ClientXor(7)
    received: list[str | bytes] = []
    done = threading.Event()

    class Greeter(websync.Handler):
        def handle_connect(self, response: Any) -> websync.Text:
            return websync.Text("hi")

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Stop:
            received.append(frame.data)
            done.set()
            return websync.Stop("normal")

    with websync.serve(Echo, port=0, extensions=[server_xor]) as server:
        handler = Greeter()
        handler.url = f"ws://127.0.0.1:{server.port}/"
        worker = spawn(handler, extensions=[client_xor])
        assert done.wait(5)
        worker.join(5)
    assert received == ["hi"]
    assert client_xor.made[0].encoded == 1 and server_xor.made[0].decoded == 1


def test_a_declined_custom_extension_is_not_used(echo_server):
    client_xor = ClientXor(1)
    with websync.connect(echo_server.url, extensions=[client_xor]) as ws:
        assert ws.extensions == ["permessage-deflate"]
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"
    assert client_xor.made == []


def test_configured_server_deflate():
    compression = ServerPerMessageDeflate(server_max_window_bits=9, compress_settings={"level": 1})
    with (
        websync.serve(Echo, port=0, compression=compression) as server,
        websync.connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert "server_max_window_bits=9" in extensions_header(ws)
        ws.send(FAR_REPEATS)
        assert ws.recv(timeout=5) == FAR_REPEATS


# -- choosing the factories ----------------------------------------------------------------------


def test_extension_factories_order_and_defaults():
    xor = ClientXor(1)
    chosen = extension_factories("deflate", [xor], Role.CLIENT)
    assert isinstance(chosen[0], ClientPerMessageDeflate) and chosen[1] is xor
    assert extension_factories(None, (), Role.CLIENT) == []
    assert isinstance(extension_factories("deflate", (), Role.SERVER)[0], ServerPerMessageDeflate)


@pytest.mark.parametrize(
    ("compression", "extensions", "role", "error"),
    [
        ("gzip", [], Role.CLIENT, ValueError),
        (ServerPerMessageDeflate(), [], Role.CLIENT, ValueError),
        (ClientPerMessageDeflate(), [], Role.SERVER, ValueError),
        (None, [ServerXor()], Role.CLIENT, TypeError),
        (None, [ClientXor(1)], Role.SERVER, TypeError),
        ("deflate", [ClientPerMessageDeflate()], Role.CLIENT, ValueError),
        (None, [ClientXor(1), ClientXor(2)], Role.CLIENT, ValueError),
    ],
)
def test_extension_factories_refuse(compression, extensions, role, error):
    with pytest.raises(error):
        extension_factories(compression, extensions, role)


@pytest.mark.parametrize("settings", [{"level": 12}, {"memLevel": 0}, {"memLevel": 10}, {"strategy": 99}])
def test_invalid_zlib_settings_are_refused_at_construction(settings):
    with pytest.raises(ValueError, match="compress_settings"):
        ClientPerMessageDeflate(compress_settings=settings)
    with pytest.raises(ValueError, match="compress_settings"):
        ServerPerMessageDeflate(compress_settings=settings)
