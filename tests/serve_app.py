"""Handlers that ``python -m websync serve serve_app:Name`` runs in the process tests (--app-dir tests).

``Echo`` echoes, answers ``pid`` with its process id, and on a drain sends ``"draining"``;
``Counting`` echoes too and, when its connection ends, prints how many messages it answered to
stdout as one JSON line (``{"path": ..., "answered": N, "code": ...}``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from websync import Binary, ConnectionClosed, Draining, ServerHandler, Text
from websync.core.server_handshake import Request

__all__ = ["Counting", "Echo"]

_print_lock = threading.Lock()


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        if isinstance(frame, Text) and frame.data == "pid":
            return Text(str(os.getpid()))
        return frame

    def handle_info(self, message: Any) -> Text | None:
        return Text("draining") if isinstance(message, Draining) else None


class Counting(ServerHandler):
    def init(self, request: Request) -> None:
        self.path = request.path
        self.answered = 0

    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        self.answered += 1
        return frame

    def terminate(self, reason: object) -> None:
        code = reason.code if isinstance(reason, ConnectionClosed) else str(reason)
        line = json.dumps({"path": self.path, "answered": self.answered, "code": code}) + "\n"
        with _print_lock:  # one write per line: the processes share the file
            os.write(sys.stdout.fileno(), line.encode())
