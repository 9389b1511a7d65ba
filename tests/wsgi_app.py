"""The Flask app of tests/server/test_wsgi_bridge.py, served by gunicorn (``wsgi_app:app``) or werkzeug in-process.

Routes: ``/ws`` upgrades to :class:`Echo` (``"close NNNN"`` closes with that code, subprotocol
``chat`` is spoken), ``/reject`` upgrades to a handler whose ``init`` refuses with 403, ``/hello``
is plain HTTP, and ``/events`` lists how the WebSockets of this process ended, as JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

import websync.wsgi
from supervisors import DynamicSupervisor
from websync import Binary, Close, ConnectionClosed, Reject, ServerHandler, Text
from websync.core.server_handshake import Request

__all__ = ["Echo", "Refuser", "app", "create_app"]


class Echo(ServerHandler):
    """Echoes messages; ``"close NNNN"`` closes with code NNNN; ``terminate`` records how it ended."""

    ended: list[Any]

    def handle_in(self, frame: Text | Binary) -> Text | Binary | Close:
        if isinstance(frame, Text) and frame.data.startswith("close "):
            return Close(int(frame.data.split()[1]), "as asked")
        return frame

    def terminate(self, reason: object) -> None:
        code = reason.code if isinstance(reason, ConnectionClosed) else None
        self.ended.append({"code": code, "reason": str(reason)})


class Refuser(ServerHandler):
    """Refuses every upgrade with 403."""

    def init(self, request: Request) -> Reject:
        return Reject(403, b"not you", {"X-Why": "test"})


def create_app(supervisor: DynamicSupervisor | None = None) -> Flask:
    """The app; its WebSocket workers are children of ``supervisor`` when one is given."""
    flask_app = Flask(__name__)
    ended: list[Any] = []

    def echo() -> Echo:
        handler = Echo()
        handler.ended = ended
        return handler

    @flask_app.route("/ws", websocket=True)
    def ws() -> ResponseReturnValue:
        return websync.wsgi.accept(request.environ, echo, subprotocols=["chat"], supervisor=supervisor)

    @flask_app.route("/reject", websocket=True)
    def reject() -> ResponseReturnValue:
        return websync.wsgi.accept(request.environ, Refuser)

    @flask_app.route("/hello")
    def hello() -> ResponseReturnValue:
        return "hello over HTTP"

    @flask_app.route("/events")
    def events() -> ResponseReturnValue:
        return jsonify(ended)

    return flask_app


app = create_app()
