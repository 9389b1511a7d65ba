"""``make demo``: websync end to end on loopback, with the trace on so every frame shows.

1. an embedded echo server (websync's own server) on a free port;
2. a blocking client: text, binary, a fragmented message, a ping, a close;
3. a callback worker that counts echoes;
4. a supervision tree: a worker that crashes on a poisoned message is restarted by one_for_one,
   while its sibling's connection stays as it was.
"""

from __future__ import annotations

import logging
import queue
import threading

import supervisors
import websync
from examples.echo_server import start as start_echo_server


def section(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def blocking_client(url: str) -> None:
    section("a blocking client (websync.connect, trace=True)")
    with websync.connect(url, trace=True) as ws:
        ws.send("hello, websync")
        print("recv:", ws.recv(timeout=5))
        ws.send(bytes(range(16)))
        print("recv:", ws.recv(timeout=5))
        ws.send("a fragmented message " * 8, fragment_size=40)
        print("recv:", ws.recv(timeout=5)[:40], "…")
        print("pong:", ws.ping(b"demo").wait(5))
    print("closed:", ws.close_code)


class Counter(websync.Handler):
    """Sends three numbers one after the other, then stops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = 0

    def handle_connect(self, response: websync.Response) -> websync.Text:
        return websync.Text("1")

    def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Stop:
        self.count = int(frame.data)
        return websync.Stop("normal") if self.count >= 3 else websync.Text(str(self.count + 1))


def callback_worker(url: str) -> None:
    section("a callback worker (websync.start, debug=['trace'])")
    worker = websync.start(Counter(url), name="counter", debug=["trace"])
    worker.join(10)
    print("exit reason:", worker.exit_reason, "| statistics:", websync.statistics(worker))


class Fragile(websync.Handler):
    """Crashes when it receives "poison"; reports every connection it makes."""

    def __init__(self, url: str, events: queue.Queue[str], label: str) -> None:
        self.url = url
        self.events = events
        self.label = label

    def handle_connect(self, response: websync.Response) -> None:
        self.events.put(f"{self.label} connected")

    def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
        if frame.data == "poison":
            raise RuntimeError(f"{self.label} swallowed poison")


def supervision_tree(url: str) -> None:
    section("a supervision tree (one_for_one): a crash and a restart")
    events: queue.Queue[str] = queue.Queue()
    specs = [
        websync.child_spec(lambda: Fragile(url, events, "fragile"), id="fragile", name="fragile"),
        websync.child_spec(lambda: Fragile(url, events, "steady"), id="steady", name="steady"),
    ]
    tree = supervisors.Supervisor(specs, strategy="one_for_one").start()
    try:
        for _ in range(2):
            print(events.get(timeout=10))
        steady = supervisors.whereis("steady")
        print("sending poison to the fragile worker")
        fragile = supervisors.whereis("fragile")
        assert isinstance(fragile, websync.Worker)
        fragile.send("poison")
        print(events.get(timeout=10), "(restarted by the supervisor)")
        print("steady worker untouched:", supervisors.whereis("steady") is steady, "| children:", tree.count_children())
    finally:
        tree.stop()


def main() -> None:
    logging.basicConfig(level=logging.DEBUG, format="  %(name)s: %(message)s")
    logging.getLogger("supervisors").setLevel(logging.INFO)
    with start_echo_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        print(f"echo server listening on {url}")
        blocking_client(url)
        callback_worker(url)
        supervision_tree(url)
    print(f"\nall done; threads left: {[t.name for t in threading.enumerate() if t is not threading.main_thread()]}")


if __name__ == "__main__":
    main()
