"""WebSockets over HTTP/2 (RFC 8441): several WebSockets on one connection.

``websync.connect(url, http2=True)`` opens one WebSocket on its own HTTP/2 connection;
:func:`connect_session` opens a connection that several WebSockets share::

    with websync.http2.connect_session("wss://example.com") as session:
        chat = websync.connect("wss://example.com/chat", session=session)
        feed = websync.connect("wss://example.com/feed", session=session)
"""

from .session import Session, connect_session

__all__ = ["Session", "connect_session"]
