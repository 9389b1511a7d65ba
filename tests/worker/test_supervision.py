"""websync workers in a supervisors tree, against a real server."""

from __future__ import annotations

import queue

import pytest

import websync
from supervisors import Supervisor, whereis

pytestmark = pytest.mark.timeout(30)


class Fragile(websync.Handler):
    """Reports its connections and messages; crashes on "poison"."""

    def __init__(self, url: str, label: str, events: queue.Queue[tuple[str, str]]) -> None:
        self.url = url
        self.label = label
        self.events = events

    def handle_connect(self, response: websync.Response) -> None:
        self.events.put((self.label, "connected"))

    def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
        if frame.data == "poison":
            raise RuntimeError(f"{self.label} swallowed poison")
        self.events.put((self.label, str(frame.data)))


def wait_for(events: queue.Queue[tuple[str, str]], *expected: tuple[str, str]) -> None:
    """Wait until every ``expected`` event arrived, in any order (others are skipped)."""
    missing = list(expected)
    while missing:
        event = events.get(timeout=10)
        if event in missing:
            missing.remove(event)


def test_one_for_one_restarts_the_crashed_worker_and_leaves_its_sibling_alone(echo_server) -> None:
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    tree = Supervisor(
        [
            websync.child_spec(lambda: Fragile(echo_server.url, "fragile", events), id="fragile", name="fragile"),
            websync.child_spec(lambda: Fragile(echo_server.url, "steady", events), id="steady", name="steady"),
        ],
        strategy="one_for_one",
    ).start()
    try:
        wait_for(events, ("fragile", "connected"), ("steady", "connected"))
        fragile, steady = whereis("fragile"), whereis("steady")
        assert isinstance(fragile, websync.Worker) and isinstance(steady, websync.Worker)
        steady_socket = steady.connection.sock if steady.connection is not None else None
        assert steady_socket is not None
        first_state = websync.get_state(fragile)

        fragile.send("poison")  # echoed back, then handle_frame raises
        wait_for(events, ("fragile", "connected"))

        assert fragile.join(5) and isinstance(fragile.exit_reason, RuntimeError)
        restarted = whereis("fragile")
        assert isinstance(restarted, websync.Worker) and restarted is not fragile
        assert websync.get_state(restarted) is not first_state, "a factory gives the restart a fresh handler"
        assert whereis("steady") is steady and steady.is_alive()
        assert steady.connection is not None and steady.connection.sock is steady_socket, "same socket"
        assert websync.statistics(steady)["reconnects"] == 0
        steady.send("still here")
        wait_for(events, ("steady", "still here"))
        restarted.send("fresh")
        wait_for(events, ("fragile", "fresh"))
    finally:
        tree.stop()
    assert not steady.is_alive() and steady.exit_reason == "shutdown"


def test_a_handler_instance_is_reused_across_restarts(echo_server) -> None:
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    handler = Fragile(echo_server.url, "reused", events)
    tree = Supervisor([websync.child_spec(handler, id="reused", name="reused")]).start()
    try:
        wait_for(events, ("reused", "connected"))
        first = whereis("reused")
        assert isinstance(first, websync.Worker)
        first.send("poison")
        wait_for(events, ("reused", "connected"))
        second = whereis("reused")
        assert isinstance(second, websync.Worker)
        assert second is not first and websync.get_state(second) is handler
    finally:
        tree.stop()
