"""The clock-free keepalive state: when pings are due and when a missing pong means a dead peer."""

from __future__ import annotations

from websync.net.options import KeepaliveOptions
from websync.worker.keepalive import Keepalive


def test_off_without_a_ping_interval() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=None), now=100.0)
    assert keepalive.next_deadline() is None
    assert keepalive.ping_due(1e9) is None
    assert not keepalive.expired(1e9)


def test_the_next_deadline_is_the_ping_then_the_earlier_of_ping_and_pong() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=100.0)
    assert keepalive.next_deadline() == 110.0
    assert keepalive.ping_due(109.9) is None
    payload = keepalive.ping_due(110.0)
    assert payload is not None and len(payload) == 4
    assert keepalive.next_deadline() == 113.0  # the pong is due before the next ping (120)
    assert not keepalive.expired(112.9) and keepalive.expired(113.0)
    keepalive.pong_received(payload)
    assert keepalive.next_deadline() == 120.0 and not keepalive.expired(1e9)


def test_a_pong_timeout_longer_than_the_interval_keeps_the_ping_first() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=5.0, ping_timeout=30.0), now=0.0)
    first = keepalive.ping_due(5.0)
    assert keepalive.next_deadline() == 10.0
    assert keepalive.ping_due(10.0) == first  # unanswered: the same payload again, same deadline
    assert keepalive.pong_deadline == 35.0 and keepalive.next_deadline() == 15.0


def test_only_the_matching_pong_counts() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=1.0, ping_timeout=1.0), now=0.0)
    payload = keepalive.ping_due(1.0)
    keepalive.pong_received(b"other")
    assert keepalive.expired(2.0)
    keepalive.pong_received(payload or b"")
    assert not keepalive.expired(2.0)


def test_no_pong_deadline_without_a_ping_timeout() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=2.0, ping_timeout=None), now=0.0)
    keepalive.ping_due(2.0)
    assert keepalive.next_deadline() == 4.0 and not keepalive.expired(1e9)


def test_restart_forgets_the_unanswered_ping() -> None:
    keepalive = Keepalive(KeepaliveOptions(ping_interval=10.0, ping_timeout=3.0), now=0.0)
    keepalive.ping_due(10.0)
    keepalive.restart(50.0)
    assert keepalive.next_deadline() == 60.0 and not keepalive.expired(59.0)
