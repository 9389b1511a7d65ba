"""What a sans-IO ``Protocol`` owes the peer, as bytes: the tests' view of a writer taking replies."""

from __future__ import annotations

from websync.protocol import Protocol


def owed_bytes(protocol: Protocol) -> bytes:
    """Queue the close of a violation (if any), then encode and take every reply owed."""
    protocol.send_failure()
    return b"".join(data for _, data in protocol.replies_to_send())
