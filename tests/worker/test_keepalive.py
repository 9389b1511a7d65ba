"""The clock-free keepalive state: when pings are due and when a missing pong means a dead peer."""

from __future__ import annotations

from websync.net.options import KeepaliveOptions
from websync.worker.keepalive import Keepalive


def ping(keepalive: Keepalive, now: float, bytes_in: int = 0, bytes_out: int = 0, unsent: int = 0) -> bytes | None:
    """What the worker does at a ping's time: take the payload, and say the ping went to the connection."""
    payload = keepalive.ping_due(now)
    if payload is not None:
        keepalive.ping_queued(now, bytes_in, bytes_out, unsent)
    return payload


def test_on_by_default_with_the_websockets_defaults() -> None:
    assert KeepaliveOptions() == KeepaliveOptions(ping_interval=20.0, ping_timeout=20.0)


def test_off_without_a_ping_interval() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=None), now=100.0)
    assert keepalive.deadline is None
    assert ping(keepalive, 1e9) is None
    assert not keepalive.expired(1e9, 0, 0)


def test_the_next_deadline_is_the_ping_then_the_earlier_of_ping_and_pong() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=100.0)
    assert keepalive.deadline == 110.0
    assert ping(keepalive, 109.9) is None
    payload = ping(keepalive, 110.0)
    assert payload is not None and len(payload) == 4
    assert keepalive.deadline == 113.0  # the pong is due before the next ping (120)
    assert not keepalive.expired(112.9, 0, 0) and keepalive.expired(113.0, 0, 0)
    keepalive.pong_received(payload)
    assert keepalive.deadline == 120.0 and not keepalive.expired(1e9, 0, 0)


def test_a_pong_timeout_longer_than_the_interval_keeps_the_ping_first() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=5.0, ping_timeout=30.0), now=0.0)
    first = ping(keepalive, 5.0)
    assert keepalive.deadline == 10.0
    assert ping(keepalive, 10.0) == first  # unanswered: the same payload again, same deadline
    assert keepalive.pong_deadline == 35.0 and keepalive.deadline == 15.0


def test_only_the_matching_pong_counts() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=1.0, ping_timeout=1.0), now=0.0)
    payload = ping(keepalive, 1.0)
    keepalive.pong_received(b"other")
    assert keepalive.expired(2.0, 0, 0)
    keepalive.pong_received(payload or b"")
    assert not keepalive.expired(2.0, 0, 0)


def test_no_pong_deadline_without_a_ping_timeout() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=2.0, ping_timeout=None), now=0.0)
    ping(keepalive, 2.0)
    assert keepalive.deadline == 4.0 and not keepalive.expired(1e9, 0, 0)


def test_restart_forgets_the_unanswered_ping() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=0.0)
    ping(keepalive, 10.0)
    keepalive.restart(50.0)
    assert keepalive.deadline == 60.0 and not keepalive.expired(59.0, 0, 0)


def test_any_byte_received_is_proof_of_life() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=0.0)
    ping(keepalive, 10.0, bytes_in=1000)
    assert not keepalive.expired(13.0, 5000, 0)  # a large message still streaming in
    assert keepalive.pong_deadline == 16.0
    assert keepalive.expired(16.0, 5000, 0)  # then silence: dead


def test_the_pongs_clock_waits_for_the_ping_to_be_written() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=0.0)
    ping(keepalive, 10.0, bytes_out=100, unsent=1_000_000)  # queued behind a large message
    assert not keepalive.expired(13.0, 0, 600_000)  # still being written
    assert not keepalive.expired(16.0, 0, 1_000_100)  # written during this window
    assert keepalive.expired(19.0, 0, 1_000_100)  # written a whole timeout ago, no pong


def test_output_that_does_not_move_proves_nothing() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=0.0)
    ping(keepalive, 10.0, bytes_out=100, unsent=1_000_000)
    assert keepalive.expired(13.0, 0, 100)  # a peer that reads nothing (black hole while sending)
