"""With no thread left to start, ``websync.connect(http2=True)`` fails in the open: TransportError
with errno EAGAIN when the HTTP/2 connection's thread cannot start, its socket and selector closed
(against hypercorn over h2c; see tests/peers/thread_wall.py)."""

from __future__ import annotations

import errno

import pytest
from peers.h2 import Peer
from peers.thread_wall import connect_without_threads

pytestmark = pytest.mark.timeout(60)


def test_no_thread_left_for_the_http2_connection_is_a_named_failure_with_nothing_left_open(
    hypercorn_h2c: Peer,
) -> None:
    outcome = connect_without_threads(hypercorn_h2c.url + "/echo", http2=True, open_timeout=5, proxy=None)
    assert outcome["errno"] == errno.EAGAIN
    assert "no thread for the HTTP/2 connection" in outcome["message"]
    assert outcome["cause"] == "RuntimeError"
    assert outcome["left_open"] == 0
