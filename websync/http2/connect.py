"""An extended CONNECT from its request to its answer, as the link and its callers share it.

A caller of :meth:`~websync.http2.link.Link.open` waits on a :class:`ConnectRequest`, which the
link's thread settles with an :class:`Answer` or an error; meanwhile the link keeps an
:class:`Opening` for each CONNECT sent and not answered yet.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import InvalidHandshake
from ..core.handshake import MAX_BODY_BYTES
from ..core.headers import Headers
from .protocol import Answered

__all__ = ["Answer", "ConnectRequest", "Opening"]


@dataclass
class Answer:
    """The server's answer to an extended CONNECT; ``sock`` is the stream's end for a 200."""

    status: int
    headers: Headers
    body: bytes = b""
    sock: socket.socket | None = None


class ConnectRequest:
    """An extended CONNECT handed over by :meth:`~websync.http2.link.Link.open`, and the answer its caller waits for.

    The link's thread settles it once, unless the caller gave up waiting first: it is then
    ``abandoned``, and the link cancels its stream.
    """

    def __init__(self, headers: Sequence[tuple[str, str]]) -> None:
        self.headers = headers
        self.abandoned = False
        self._settled = threading.Event()
        self._lock = threading.Lock()
        self._answer: Answer | None = None
        self._error: Exception | None = None

    def settle(self, answer: Answer | None = None, error: Exception | None = None) -> bool:
        """Hand the caller its answer or error; False if it had given up (or was already answered)."""
        with self._lock:
            if self.abandoned or self._settled.is_set():
                return False
            self._answer, self._error = answer, error
            self._settled.set()
            return True

    def wait(self, timeout: float | None) -> Answer | None:
        """The answer, or the error raised; None if ``timeout`` passed first (then abandoned)."""
        if not self._settled.wait(timeout):
            with self._lock:
                self.abandoned = not self._settled.is_set()
            if self.abandoned:
                return None
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


class Opening:
    """A CONNECT sent on ``stream_id`` and not answered yet, or refused and reading its body."""

    __slots__ = ("request", "stream_id", "_refusal", "_body")

    def __init__(self, request: ConnectRequest, stream_id: int) -> None:
        self.request = request
        self.stream_id = stream_id
        self._refusal: Answered | None = None
        self._body = bytearray()

    def refuse(self, answer: Answered) -> None:
        """A status other than 200: its caller gets it, with its body, once the stream ends."""
        self._refusal = answer

    def add_body(self, data: bytes) -> None:
        """Keep a refusal's body, up to :data:`~websync.core.handshake.MAX_BODY_BYTES`."""
        if self._refusal is not None:
            self._body += data[: max(MAX_BODY_BYTES - len(self._body), 0)]

    def settle_ended(self) -> None:
        """The server ended the stream: answer with its refusal, or fail for want of an answer."""
        if self._refusal is None:
            error = InvalidHandshake(f"the server ended stream {self.stream_id} without an answer")
            self.request.settle(error=error)
        else:
            self.request.settle(Answer(self._refusal.status, self._refusal.headers, bytes(self._body)))
