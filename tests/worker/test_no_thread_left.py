"""With no thread left to start, ``websync.connect()`` fails in the open: TransportError with errno
EAGAIN, the socket it connected closed before the error reaches the caller (not left to the garbage
collector). Run in a subprocess against a real server: the address-space limit that makes thread
stacks fail is the process's."""

from __future__ import annotations

import errno

import pytest
from peers.thread_wall import connect_without_threads

pytestmark = pytest.mark.timeout(30)


def test_no_thread_left_is_a_named_failure_and_the_socket_is_closed(echo_server) -> None:
    outcome = connect_without_threads(echo_server.url, open_timeout=5, proxy=None)
    assert outcome["errno"] == errno.EAGAIN
    assert "no thread for the connection's worker" in outcome["message"] and "can't start" in outcome["message"]
    assert outcome["cause"] == "StartError"
    assert outcome["left_open"] == 0
