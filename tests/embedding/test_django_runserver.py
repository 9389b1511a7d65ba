"""The Django example under ``manage.py runserver``: the tree starts on the first request, in the
serving process only (never in the autoreloader's watcher), and request/reply and the feed work
through it; a reload closes the old tree before the new one connects."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from peers.recording_server import RecordingServer
from web_servers import ROOT, WAIT, WebServer, free_port

pytestmark = pytest.mark.timeout(30)

STARTED = "development server at http://127.0.0.1:"
"""runserver's line once it listens: "Starting development server at ..." (Django 5), "Starting WSGI
development server at ..." (Django 6)."""


def test_django_example_request_reply(web_server, upstream) -> None:
    port = free_port()
    server = web_server(
        [sys.executable, "examples/django_app/manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        rf"{re.escape(STARTED)}({port})/",
    )
    assert upstream.opened() == [], "nothing connects before the first request"

    code, body = server.get("/echo?text=bonjour")
    assert (code, body["text"]) == (200, "bonjour")
    texts = [f"n{i}" for i in range(10)]
    assert [server.get(f"/echo?text={text}")[1]["text"] for text in texts] == texts
    code, status = server.get("/status")
    assert code == 200 and status["workers"]["api"]["frames_out"] == 11
    assert upstream.opened_paths(2, WAIT) == ["/api", "/feed"], "one tree, started once"


def test_django_autoreloader_connects_only_from_the_serving_process(web_server, upstream: RecordingServer) -> None:
    # The default runserver: a watcher process that never serves, and a serving child that the
    # watcher replaces whenever a source file changes. Only the serving child connects, and a
    # reload closes the old child's WebSockets with 1001 before the new child opens its own.
    port = free_port()
    server = web_server(
        [sys.executable, "examples/django_app/manage.py", "runserver", f"127.0.0.1:{port}"],
        rf"{re.escape(STARTED)}({port})/",
    )
    assert server.get("/echo?text=before")[1]["text"] == "before"
    assert upstream.opened_paths(2, WAIT) == ["/api", "/feed"], "the watcher does not connect"
    first_ports = {client_port for _, client_port in upstream.opened()}

    _touch_until_reloaded(server, ROOT / "examples" / "django_app" / "relay_site" / "views.py")
    closed = upstream.close_codes(first_ports, WAIT)
    assert closed == dict.fromkeys(first_ports, 1001), "the replaced child closed its WebSockets with 1001"
    assert server.get("/echo?text=after")[1]["text"] == "after"
    assert upstream.opened_paths(4, WAIT) == ["/api", "/api", "/feed", "/feed"]


def _touch_until_reloaded(server: WebServer, source: Path) -> None:
    """Touch ``source`` until the watcher starts a new serving child. The watcher polls modification
    times once a second and remembers a file's first one, so one early touch may go unseen."""
    start, deadline = server.offset(), time.monotonic() + WAIT
    while STARTED not in server.output[start:]:
        assert time.monotonic() < deadline, f"no reload after touching {source}:\n{server.output[-3000:]}"
        source.touch()
        time.sleep(0.5)
