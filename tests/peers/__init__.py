"""Real peers for integration tests: a `websockets` server in a subprocess and a scripted raw TCP peer.

No tests live here; ``tests/conftest.py`` turns these helpers into fixtures.
"""

from .raw_server import Frame, PeerConnection, RawServer
from .websockets_server import ServerOptions, ServerProcess, start_server

__all__ = ["Frame", "PeerConnection", "RawServer", "ServerOptions", "ServerProcess", "start_server"]
