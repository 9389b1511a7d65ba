"""The worker's outbox: its bound, its overflow policies and its one sender at a time."""

from __future__ import annotations

import pytest

from websync.core.frames import Close, Frame, Text
from websync.net.statistics import Statistics
from websync.worker.outbox import Outbox, QueueFull


def test_a_drop_oldest_during_a_send_never_costs_the_next_frame() -> None:
    """The sender hands out the first frame; a put that overflows meanwhile drops that same frame
    (the oldest). The sender must not then pop the next one, which never went out."""
    stats = Statistics()
    outbox = Outbox(2, "drop_oldest", stats)
    first, second, third = Text("a"), Text("b"), Text("c")
    outbox.put(first)
    outbox.put(second)
    sent: list[Frame] = []

    def send(frame: Frame) -> bool:
        if frame is first:
            outbox.put(third)  # another thread's send, while this frame is on its way
        sent.append(frame)
        return True

    outbox.send_queued(send)
    assert sent == [first, second, third]
    assert stats.dropped == 1
    assert len(outbox) == 0


def test_overflow_policies() -> None:
    stats = Statistics()
    refusing = Outbox(1, "error", stats)
    refusing.put(Text("a"))
    with pytest.raises(QueueFull):
        refusing.put(Text("b"))
    newest = Outbox(1, "drop_newest", stats)
    assert newest.put(Text("a")) and newest.put(Text("b"))
    assert list(newest.frames or ()) == [Text("a")]
    closing = Outbox(1, "close", stats)
    assert closing.put(Text("a"))
    assert not closing.put(Text("b"))  # once: the caller closes with 1008
    assert closing.put(Text("c")) and len(closing) == 0
    assert stats.dropped == 1 + 2 + 1


def test_an_idle_outbox_holds_no_queue_and_a_declined_frame_stays_first() -> None:
    outbox = Outbox(None, "error", Statistics())
    assert outbox.frames is None and len(outbox) == 0 and not outbox.has_close()
    outbox.put_all([Text("a"), Close(1000, "")])
    outbox.put_all([Text("first")], first=True)

    def decline(frame: Frame) -> bool:
        return False

    outbox.send_queued(decline)
    assert outbox.frames is not None
    assert [type(frame) for frame in outbox.frames] == [Text, Text, Close]
    outbox.drop_closes()
    assert not outbox.has_close() and outbox.discard() == 2
