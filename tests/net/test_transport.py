"""websync.net.transport's Poller (one poll object kept for the same sockets, wait after wait) and Waker."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from websync.net.transport import Poller, Waker, readable

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(2)]
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def test_it_reports_the_readable_sockets_and_nothing_on_timeout(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (first, first_peer), (second, second_peer) = pairs
    poller = Poller([first, second])
    assert poller.wait(0) == []
    second_peer.send(b"x")
    assert poller.wait(1) == [second]
    first_peer.send(b"y")
    assert set(poller.wait(1)) == {first, second}
    second.recv(1)
    assert poller.wait(0) == [first]  # the same poll object, the next wait: what is ready now


def test_a_writer_counts_once_it_has_room_and_stops_counting_when_dropped(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (first, _), (second, _) = pairs
    poller = Poller([first, second])
    assert poller.wait(0, writer=first) == [first]  # an empty socket buffer has room
    assert poller.wait(0) == []  # no longer asked for room: not ready
    assert poller.wait(0, writer=second) == [second]


def test_a_writer_without_room_is_not_ready(pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (first, _), _ = pairs
    first.setblocking(False)
    try:
        while True:
            first.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    assert Poller([first]).wait(0.05, writer=first) == []


def test_a_peer_that_hung_up_counts_as_ready(pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (first, first_peer), _ = pairs
    poller = Poller([first])
    first_peer.close()
    assert poller.wait(1) == [first]


def test_a_waker_wakes_once_until_drained() -> None:
    waker = Waker()
    waker.open()
    try:
        assert readable([waker.reader], 0) == []
        waker.wake()
        waker.wake()  # pending: no second byte
        assert readable([waker.reader], 0) == [waker.reader]
        assert os.read(waker.reader.fileno(), 16)  # one wake-up (an eventfd counter of 1, or one pipe byte)
        waker.wake()  # still pending until drained: the reader stays quiet
        assert readable([waker.reader], 0) == []
        waker.drain()
        assert not waker.pending
        waker.wake()
        assert readable([waker.reader], 0) == [waker.reader]
        waker.drain()
        assert readable([waker.reader], 0) == []
    finally:
        waker.close()


def test_a_wake_up_before_the_waker_opens_is_kept_for_it() -> None:
    """A worker's waker is opened in its own thread: a message posted before must still wake it."""
    waker = Waker()
    waker.wake()  # no descriptor yet
    waker.open()
    try:
        assert readable([waker.reader], 0) == [waker.reader]
        waker.drain()
        assert readable([waker.reader], 0) == []
    finally:
        waker.close()
    waker.close()  # closed twice: nothing to do
    unopened = Waker()
    unopened.close()  # never opened: nothing to close


def test_a_wake_up_in_flight_never_writes_into_a_descriptor_that_reuses_its_number(monkeypatch) -> None:
    """``os.write`` lets go of the GIL after it took the waker's number: a close in that gap
    (the worker exits while another thread sends to it) must not free the number for the next
    socket opened, which the late write would then corrupt."""
    waker = Waker()
    waker.open()
    entered, proceed = threading.Event(), threading.Event()
    real_write = os.write

    def write_after_a_pause(fd: int, data: bytes) -> int:  # the GIL let go, the number taken
        if threading.current_thread() is waking:
            entered.set()
            proceed.wait(5)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_after_a_pause)
    waking = threading.Thread(target=waker.wake)
    waking.start()
    assert entered.wait(5)
    closing = threading.Thread(target=waker.close)
    closing.start()
    closing.join(0.2)  # the worker's exit, while the wake-up is in flight
    ours, theirs = socket.socketpair()  # the lowest free numbers: the waker's, had it been freed
    try:
        proceed.set()
        waking.join(5)
        closing.join(5)
        assert not closing.is_alive()
        assert waker.reader.fileno() == -1
        for end in (ours, theirs):
            end.setblocking(False)
            with pytest.raises(BlockingIOError):
                end.recv(16)
    finally:
        ours.close()
        theirs.close()
