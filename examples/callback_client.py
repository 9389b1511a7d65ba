"""A callback client: a Handler driven by a worker thread, with reconnects and tracing.

python examples/callback_client.py ws://127.0.0.1:8765/
"""

from __future__ import annotations

import logging
import sys
import threading

import websync


class Counter(websync.Handler):
    """Sends numbers, counts the echoes, stops after ``limit`` of them."""

    def __init__(self, url: str, limit: int = 5) -> None:
        self.url = url
        self.limit = limit
        self.received = 0
        self.done = threading.Event()

    def handle_connect(self, response: websync.Response) -> websync.Text:
        print(f"connected (HTTP {response.status})")
        return websync.Text("0")

    def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Stop:
        self.received += 1
        print("echo:", frame.data)
        if self.received >= self.limit:
            return websync.Stop("normal")
        return websync.Text(str(self.received))

    def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Reconnect | websync.Stop:
        print(f"disconnected ({reason}); attempt {attempt}")
        return websync.Reconnect(websync.backoff(attempt)) if attempt < 5 else websync.Stop(reason)

    def terminate(self, reason: object) -> None:
        print("terminated:", reason)
        self.done.set()


def main(url: str) -> None:
    logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
    handler = Counter(url)
    worker = websync.start(handler, name="counter", debug=["trace"])
    handler.done.wait(30)
    worker.join(5)
    print("statistics:", websync.statistics(worker))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")
