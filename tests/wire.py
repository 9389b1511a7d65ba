"""What a sans-IO ``Protocol`` owes the peer, as bytes: the tests' view of a writer taking replies."""

from __future__ import annotations

from websync.core.protocol import Protocol


def owed_bytes(protocol: Protocol) -> bytes:
    """What a writer sends the peer now: the close of a violation (if any) queued, every reply
    owed, then the answer to the peer's close frame."""
    protocol.send_failure()
    data = b"".join(data for _, data in protocol.replies_to_send())
    close_reply = protocol.close_reply()
    return data if close_reply is None else data + protocol.send(close_reply)
