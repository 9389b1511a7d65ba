"""Headless Chromium driven over the DevTools protocol, spoken with websync's own client.

:class:`Chromium` starts the browser on loopback with a profile in a folder of its own, serves a
blank page from a local ``http.server`` (so that scripts run in an ``http://127.0.0.1`` origin),
navigates the browser's page there and runs JavaScript in it with ``Runtime.evaluate``: a script
that returns a promise (``new WebSocket(url)`` … resolved on ``close``) hands back its value.
"""

from __future__ import annotations

import http.server
import itertools
import json
import shutil
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import websync

from .spawn import Spawned

__all__ = ["Chromium", "chromium_binary", "DevToolsError"]

PAGE = b"<!doctype html><title>websync test page</title>"


class DevToolsError(RuntimeError):
    """The DevTools protocol answered with an error, or the script threw."""


def chromium_binary() -> str | None:
    """The chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Chromium:
    """A headless Chromium with one page open on a local blank page; :meth:`close` stops both.

    ``extra_args``: more command-line switches, e.g. ``--ignore-certificate-errors-spki-list=…``
    to trust a test certificate's key for wss://."""

    def __init__(self, folder: Path, extra_args: Sequence[str] = ()) -> None:
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("chromium is not installed (Debian package chromium)")
        folder.mkdir(parents=True, exist_ok=True)
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="chromium-page-server")
        self._http_thread.start()
        self.origin = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._devtools: websync.ClientConnection | None = None
        argv = [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={folder / 'profile'}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            *extra_args,
            "about:blank",
        ]
        try:
            self.process = Spawned(
                argv, r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", folder / "chromium.log", timeout=30, group=True
            )
            self._devtools = websync.connect(self._page_debugger_url(), open_timeout=10, max_size=None)
            self.call("Page.enable")
            self.call("Page.navigate", url=self.origin + "/")
            self._wait_for_page()
        except BaseException:
            self.close()
            raise

    def _page_debugger_url(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.process.port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        return str(next(target for target in targets if target["type"] == "page")["webSocketDebuggerUrl"])

    def _wait_for_page(self) -> None:
        for _ in range(100):
            if self.evaluate("document.readyState === 'complete' && location.origin", timeout=5) == self.origin:
                return
            threading.Event().wait(0.05)
        raise DevToolsError(f"the page at {self.origin} did not load")

    def call(self, method: str, timeout: float = 10, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        assert self._devtools is not None
        with self._lock:
            request_id = next(self._ids)
            self._devtools.send(json.dumps({"id": request_id, "method": method, "params": params}))
            while True:
                message = json.loads(self._devtools.recv(timeout=timeout))
                if message.get("id") != request_id:
                    continue  # an event
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Run ``expression`` in the page; a promise is awaited. Returns its value (JSON-able)."""
        result = self.call(
            "Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"the script threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        if self._devtools is not None:
            self._devtools.close()
            self._devtools = None
        if hasattr(self, "process"):
            self.process.stop()
        self._http.shutdown()
        self._http.server_close()
        self._http_thread.join(5)
