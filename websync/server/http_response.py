"""Plain HTTP on the WebSocket port: what ``serve(..., process_request=...)`` may answer.

``process_request(request)`` is called with every request before any upgrade (a request without
``Upgrade`` too). It returns None to go on with the upgrade, or a response sent before the
connection closes: an :class:`HTTPResponse`, or a ``(status, headers, body)`` tuple::

    def health(request):
        if request.path == "/healthz":
            return HTTPResponse(200, body=b"ok")
        return None
"""

from __future__ import annotations

import http
from collections.abc import Callable
from dataclasses import dataclass

from ..core.handshake import Response
from ..core.headers import Headers, HeadersLike
from ..core.server_handshake import Request

__all__ = ["HTTPResponse", "ProcessRequest", "as_response"]


@dataclass(frozen=True)
class HTTPResponse:
    """A plain HTTP response: ``status``, extra ``headers``, ``body`` (``str`` is sent as UTF-8 text).

    ``Content-Length`` and ``Connection: close`` are added; ``Content-Type`` defaults to plain text.
    """

    status: int
    headers: HeadersLike | None = None
    body: bytes | str = b""


ProcessRequest = Callable[[Request], "HTTPResponse | tuple[int, HeadersLike | None, bytes | str] | None"]
"""The type of ``process_request``."""


def as_response(answer: object) -> Response:
    """The :class:`~websync.Response` to send for what ``process_request`` returned (not None).

    Raises ``TypeError`` for anything but an :class:`HTTPResponse` or a ``(status, headers, body)``
    tuple, ``ValueError`` for a status outside 200-599.
    """
    if isinstance(answer, tuple) and len(answer) == 3:
        answer = HTTPResponse(*answer)
    if not isinstance(answer, HTTPResponse):
        raise TypeError(f"process_request must return None, HTTPResponse or (status, headers, body), not {answer!r}")
    status = int(answer.status)
    if not 200 <= status <= 599:
        raise ValueError(f"process_request answered status {status}: use 200 to 599")
    body = answer.body.encode() if isinstance(answer.body, str) else bytes(answer.body)
    framing = {"content-length", "connection", "transfer-encoding"}  # the server's to set: it closes after the body
    headers = Headers([(name, value) for name, value in Headers(answer.headers).items() if name.lower() not in framing])
    if "Content-Type" not in headers:
        headers.add("Content-Type", "text/plain; charset=utf-8")
    headers.add("Content-Length", str(len(body)))
    headers.add("Connection", "close")
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return Response(status, reason, headers, body)
