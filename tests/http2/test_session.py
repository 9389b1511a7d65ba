"""A session's options: one typed ConnectOptions, whether given by connect_session's keywords or directly."""

from __future__ import annotations

import inspect

import pytest
from peers.h2 import Peer

import websync
import websync.http2
from websync.net.options import ConnectOptions

pytestmark = pytest.mark.timeout(30)


def test_connect_session_defaults_are_those_of_connect_options() -> None:
    defaults = ConnectOptions()
    for name, parameter in inspect.signature(websync.http2.connect_session).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            assert parameter.default == getattr(defaults, name), name


def test_connect_session_keywords_become_the_sessions_options(hypercorn_h2c: Peer) -> None:
    with websync.http2.connect_session(hypercorn_h2c.url, open_timeout=7, trace=True, proxy=None) as session:
        assert session.options == ConnectOptions(open_timeout=7, trace=True, proxy=None)
        assert session.tracer.enabled


def test_a_session_made_from_options_opens_on_first_use(hypercorn_h2c: Peer) -> None:
    with websync.http2.Session(hypercorn_h2c.url, ConnectOptions(open_timeout=5)) as session:
        assert session.streams == 0
        with websync.connect(hypercorn_h2c.url + "/echo", session=session, **hypercorn_h2c.options()) as ws:
            assert session.streams == 1
            ws.send("first use")
            assert ws.recv(timeout=5) == "first use"
