"""A blocking script: connect, send a few messages, print the echoes, close.

python examples/blocking_script.py ws://127.0.0.1:8765/
"""

from __future__ import annotations

import sys

import websync


def main(url: str) -> None:
    with websync.connect(url) as ws:
        print(f"connected: HTTP {ws.status}, extensions {ws.extensions}")
        for text in ("hello", "world"):
            ws.send(text)
            print("echo:", ws.recv(timeout=5))
        ws.send(bytes(range(8)))
        print("echo:", ws.recv(timeout=5))
        print("pong received:", ws.ping(b"are you there?").wait(5))
    print(f"closed with code {ws.close_code}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")
