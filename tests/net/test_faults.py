"""Network faults injected by a TCP relay (tests/peers/fault_relay.py) between websync and a real
``websockets`` server that records what it receives: cuts in the middle of a frame, resets, black
holes (half-open connections), byte-by-byte trickles, and a server that goes down while messages
are queued.

The blocking client must raise a clear exception within its timeouts, after handing out what
arrived before the fault. A worker must notice (keepalive for a black hole), call
``handle_disconnect``, reconnect with backoff and then deliver what was queued meanwhile exactly
once and in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers.fault_relay import FaultRelay
from worker_peers import Recorder, ScriptedServer, path_of, unique_url

import websync

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]


@pytest.fixture
def relay() -> Iterator[Callable[[ScriptedServer], FaultRelay]]:
    """``relay(origin)``: a FaultRelay in front of a ScriptedServer, closed at teardown."""
    relays: list[FaultRelay] = []

    def make(origin: ScriptedServer) -> FaultRelay:
        relays.append(FaultRelay(("127.0.0.1", origin.port)))
        return relays[-1]

    yield make
    for made in relays:
        made.close()


def relayed_url(relay: FaultRelay, origin: ScriptedServer) -> str:
    """A URL through ``relay`` with a path of its own on ``origin``."""
    url: str = relay.url(path_of(unique_url(origin)))
    return url


def received_by_origin(origin: ScriptedServer, url: str) -> list[str]:
    """The text messages the origin received on ``url``'s path, in order."""
    with origin.cond:
        return [e["data"] for e in origin.events if e["event"] == "message" and e["path"] == path_of(url)]


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def frame_size(text: str) -> int:
    """Bytes of an unmasked, uncompressed server frame carrying ``text``."""
    size = len(text.encode())
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


# -- the blocking client ----------------------------------------------------------------------------


def test_cut_mid_frame_delivers_what_came_before_then_1006(server, relay):
    proxy = relay(server)
    ws = websync.connect(relayed_url(proxy, server), compression=None, close_timeout=1)
    big = "b" * 1000
    # let both small echoes through, and the big echo's header and 100 bytes of its payload
    proxy.cut(after=frame_size("one") + frame_size("two") + 4 + 100)
    ws.send("one")
    ws.send("two")
    ws.send(big)
    start = time.monotonic()
    assert ws.recv(timeout=5) == "one"
    assert ws.recv(timeout=5) == "two"
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert time.monotonic() - start < 2
    assert info.value.code == 1006 and ws.close_code == 1006
    with pytest.raises(websync.ConnectionClosedError):
        ws.send("after")
    ws.close()
    assert not ws.worker.is_alive()


def test_reset_delivers_what_came_before_then_1006(server, relay):
    proxy = relay(server)
    ws = websync.connect(relayed_url(proxy, server), close_timeout=1)
    relayed = proxy.downstream_bytes
    ws.send("before the reset")
    # The echo is in the client's socket (acknowledged): a RST must not overtake it on loopback.
    wait_until(lambda: proxy.downstream_bytes > relayed and proxy.undelivered() == 0)
    proxy.reset()
    start = time.monotonic()
    assert ws.recv(timeout=5) == "before the reset"
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert time.monotonic() - start < 2
    assert info.value.code == 1006
    with pytest.raises(websync.ConnectionClosedError):
        ws.send("after")
    ws.close()


def test_black_hole_is_noticed_by_keepalive_within_its_timeout(server, relay):
    proxy = relay(server)
    ws = websync.connect(relayed_url(proxy, server), ping_interval=0.1, ping_timeout=0.3, close_timeout=0.5)
    ws.send("hello")
    assert ws.recv(timeout=5) == "hello"
    proxy.blackhole()
    start = time.monotonic()
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"noticed after {elapsed:.2f}s; ping_interval + ping_timeout is 0.4s"
    assert info.value.code == 1006
    ws.close()
    assert not ws.worker.is_alive()


def test_black_hole_without_keepalive_times_out_recv_and_close(server, relay):
    # nothing can notice a black hole but a deadline: recv's timeout, then close_timeout
    proxy = relay(server)
    ws = websync.connect(relayed_url(proxy, server), close_timeout=0.3)
    proxy.blackhole()
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    start = time.monotonic()
    ws.close()
    assert time.monotonic() - start < 1.5
    assert ws.close_code == 1006
    assert not ws.worker.is_alive()


def test_black_hole_during_the_handshake_is_an_open_timeout(server, relay):
    proxy = relay(server)
    proxy.blackhole()
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout):
        websync.connect(relayed_url(proxy, server), open_timeout=0.5)
    assert 0.45 <= time.monotonic() - start < 1.5


@pytest.mark.parametrize("attempt", range(5))
def test_reset_during_the_handshake_is_a_websync_error(server, relay, attempt):
    # the reset may hit the connect, the request's write or the response's read: always one of
    # websync's errors (a raw ConnectionResetError escaped from the write before)
    proxy = relay(server)
    proxy.refuse()
    with pytest.raises((websync.InvalidHandshake, websync.TransportError), match="reset|closed before") as info:
        websync.connect(relayed_url(proxy, server), open_timeout=2)
    assert not isinstance(info.value, websync.OpenTimeout)


def test_every_byte_trickled_still_works(server, relay):
    proxy = relay(server)
    proxy.trickle(0.0005)
    message = "κόσμε " * 30  # multi-byte characters split across reads
    with websync.connect(relayed_url(proxy, server), open_timeout=10, compression=None) as ws:
        ws.send(message)
        assert ws.recv(timeout=10) == message
    assert ws.close_code == 1000
    assert proxy.downstream_bytes > len(message.encode())


def test_origin_dies_the_client_reports_1006(own_server, relay):
    own_server.start()
    proxy = relay(own_server)
    ws = websync.connect(relayed_url(proxy, own_server), close_timeout=1)
    ws.send("x")
    assert ws.recv(timeout=5) == "x"
    own_server.kill()
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1006


# -- workers: notice, reconnect with backoff, deliver the queue -------------------------------------


class TimedRecorder(Recorder):
    """Also records when each connection attempt starts."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.attempt_times: list[float] = []

    def connect(self) -> Any:
        self.attempt_times.append(time.monotonic())
        return super().connect()


BACKOFF = {"min": 0.05, "max": 0.5, "jitter": 0}


def inject(fault: str, proxy: FaultRelay, origin: ScriptedServer) -> None:
    if fault == "cut mid-frame":
        proxy.cut(after=4 + 100)  # the big echo's header and 100 bytes of its payload
    elif fault == "reset":
        proxy.reset()
    elif fault == "black hole":
        proxy.blackhole()
    elif fault == "origin down":
        origin.kill()


@pytest.mark.parametrize("fault", ["cut mid-frame", "reset", "black hole", "origin down"])
def test_worker_reconnects_with_backoff_and_delivers_the_queue_once_in_order(fault, own_server, relay, spawn):
    own_server.start()
    proxy = relay(own_server)
    url = relayed_url(proxy, own_server)

    def lost(arg: tuple[Exception, int]) -> websync.Reconnect:
        proxy.refuse(current=False)  # keep the network down until the test heals it
        return websync.Reconnect(websync.backoff(arg[1], **BACKOFF))

    rec = TimedRecorder(url, hooks={"handle_disconnect": lost})
    worker = spawn(rec, compression=None, ping_interval=0.1, ping_timeout=0.3, open_timeout=2, close_timeout=1)
    rec.wait_count("handle_connect")
    worker.send("before")
    assert rec.wait_frames(1) == ["before"]

    if fault == "cut mid-frame":
        inject(fault, proxy, own_server)
        worker.send("big" * 400)
    else:
        worker.send("last before the fault")
        rec.wait_frames(2)
        inject(fault, proxy, own_server)
    start = time.monotonic()
    rec.wait_count("disconnect", 3)  # the loss, then two failed attempts
    noticed = rec.of("disconnect")[0]
    assert isinstance(noticed[1], websync.ConnectionClosedError) and noticed[1].code == 1006, noticed
    assert noticed[2] == 1
    assert time.monotonic() - start < 3
    assert [event[2] for event in rec.of("disconnect")[:3]] == [1, 2, 3]  # failures in a row count up
    assert all(isinstance(event[1], websync.WebSocketError) for event in rec.of("disconnect"))

    queued = [f"q{i}" for i in range(20)]
    for message in queued:
        worker.send(message)
    assert worker.queued == 20
    if fault == "origin down":
        own_server.start(port=own_server.port)
    proxy.heal()

    expected_frames = ["before", "big" * 400] if fault == "cut mid-frame" else ["before", "last before the fault"]
    wait_until(lambda: received_by_origin(own_server, url)[-20:] == queued)
    # the handler saw what arrived before the fault, then the echoes of the queue (a frame cut
    # in half is not delivered)
    delivered = ["before"] + ([] if fault == "cut mid-frame" else ["last before the fault"]) + queued
    assert rec.wait_frames(len(delivered)) == delivered
    assert worker.queued == 0
    history = received_by_origin(own_server, url)
    # exactly once and in order: the origin has no other copy of any queued message
    assert history == ([] if fault == "origin down" else expected_frames) + queued

    # backoff: attempt n+1 starts at least backoff(n) after attempt n failed (n = 2, 3, ...)
    gaps = [b - a for a, b in zip(rec.attempt_times[1:], rec.attempt_times[2:])]
    attempts = [event[2] for event in rec.of("disconnect")][1 : 1 + len(gaps)]
    assert len(gaps) >= 2
    for gap, attempt in zip(gaps, attempts):
        assert gap >= 0.9 * websync.backoff(attempt, **BACKOFF), (gaps, attempts)
    assert websync.statistics(worker)["reconnects"] >= 3
    worker.stop()
    assert worker.exit_reason == "normal"


def test_worker_over_a_trickling_network(server, relay, spawn):
    proxy = relay(server)
    proxy.trickle(0.0005)
    url = relayed_url(proxy, server)
    rec = Recorder(url)
    worker = spawn(rec, open_timeout=10)
    rec.wait_count("handle_connect", timeout=10)
    messages = ["é" * 50, "x" * 200, "last"]
    for message in messages:
        worker.send(message)
    assert rec.wait_frames(3, timeout=10) == messages
    worker.stop()
    assert rec.of("disconnect") == []
    assert received_by_origin(server, url) == messages
