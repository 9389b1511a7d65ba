"""The websync side of the Flask and Django examples: two supervised workers per web-server process.

- ``feed`` subscribes to ``$UPSTREAM_URL/feed`` and keeps its latest messages (a live feed that
  the web application relays to its clients);
- ``api`` holds one connection to ``$UPSTREAM_URL/api`` through which request handlers send
  requests and wait for the matching answers (request/reply by correlation id).

Nothing connects at import: :data:`TREE` starts the tree on first use (or from a server hook) in
each process, and stops it at process exit with close code 1001.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import uuid
from collections.abc import Hashable
from typing import Any

import websync
from supervisors import Supervisor

__all__ = ["TREE", "Api", "Feed", "ask", "echo", "latest", "status"]

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "ws://127.0.0.1:8765")
FEED_SIZE = 20


class Feed(websync.Handler):
    """Keeps the latest ``FEED_SIZE`` messages of the upstream feed."""

    url = f"{UPSTREAM_URL}/feed"

    def __init__(self) -> None:
        self.messages: collections.deque[str] = collections.deque(maxlen=FEED_SIZE)

    def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
        if isinstance(frame, websync.Text):
            self.messages.append(frame.data)


class Api(websync.Correlated):
    """JSON requests and answers that carry an ``"id"``; other messages are kept as notices."""

    url = f"{UPSTREAM_URL}/api"

    def __init__(self) -> None:
        self.notices: collections.deque[Any] = collections.deque(maxlen=FEED_SIZE)

    def correlate(self, frame: websync.Text | websync.Binary) -> Hashable | None:
        correlation_id: Hashable | None = json.loads(frame.data).get("id")
        return correlation_id

    def handle_unmatched(self, frame: websync.Text | websync.Binary) -> None:
        self.notices.append(json.loads(frame.data))


def _build() -> Supervisor:
    return Supervisor(
        [
            websync.child_spec(Feed, id="feed", name="feed", ping_interval=20),
            websync.child_spec(Api, id="api", name="api", ping_interval=20),
        ],
        name="relay",
    )


TREE = websync.ProcessTree(_build)


def ask(payload: dict[str, Any], timeout: float = 5.0) -> Any:
    """Send ``payload`` to the API with a fresh id and return its answer (TimeoutError, ConnectionClosed)."""
    TREE.start()
    request_id = uuid.uuid4().hex
    answer = websync.request("api", json.dumps({**payload, "id": request_id}), key=request_id, timeout=timeout)
    return json.loads(answer)


def echo(text: str) -> tuple[dict[str, Any], int]:
    """An HTTP view's JSON body and status for asking the API to echo ``text``: 504 on a timeout,
    502 when the connection was lost before the answer."""
    try:
        return ask({"text": text}), 200
    except TimeoutError:
        return {"error": "the upstream API did not answer in time"}, 504
    except (websync.ConnectionClosed, websync.WorkerNotFound) as exc:
        return {"error": str(exc)}, 502


def _worker(name: str) -> websync.Worker:
    worker = TREE.whereis(name)
    assert isinstance(worker, websync.Worker)
    return worker


def latest() -> list[str]:
    """The feed's latest messages, oldest first."""
    feed = websync.get_state(_worker("feed"))
    assert isinstance(feed, Feed)
    return list(feed.messages)


def status() -> dict[str, Any]:
    """This process: its pid, its threads, and each worker's statistics (and the API's notices)."""
    workers = {name: _worker(name) for name in ("feed", "api")}
    api = websync.get_state(workers["api"])
    assert isinstance(api, Api)
    return {
        "pid": os.getpid(),
        "threads": threading.active_count(),
        "workers": {name: websync.statistics(worker) for name, worker in workers.items()},
        "notices": list(api.notices),
    }
