"""The Django example under ``manage.py runserver --noreload``: the tree starts on the first request,
in the serving process only, and request/reply and the feed work through it."""

from __future__ import annotations

import sys

import pytest
from web_servers import free_port

pytestmark = pytest.mark.timeout(30)


def test_django_example_request_reply(web_server, upstream) -> None:
    port = free_port()
    server = web_server(
        [sys.executable, "examples/django_app/manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        rf"Starting development server at http://127.0.0.1:({port})/",
    )
    assert upstream.opened() == [], "nothing connects before the first request"

    code, body = server.get("/echo?text=bonjour")
    assert (code, body["text"]) == (200, "bonjour")
    texts = [f"n{i}" for i in range(10)]
    assert [server.get(f"/echo?text={text}")[1]["text"] for text in texts] == texts
    code, status = server.get("/status")
    assert code == 200 and status["workers"]["api"]["frames_out"] == 11
    assert sorted(path for path, _ in upstream.opened()) == ["/api", "/feed"], "one tree, started once"
