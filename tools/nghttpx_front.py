"""Start nghttpx as an RFC 8441 h2c front of an HTTP/1.1 WebSocket server and always stop it afterwards.

nghttpx accepts extended CONNECT (``:protocol websocket``) on its HTTP/2
frontend and turns each such stream into an HTTP/1.1 Upgrade request on its
own backend connection; after the 101 it relays the bytes both ways, so the
WebSocket frames pass through unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from autobahn_server import (
    HOST,
    START_TIMEOUT,
    ServerError,
    _free_port,
    _listening,
    _stop,
)

# host-rewrite: the backend sees its own address in Host (the fuzzingserver refuses a Host port
# other than the one it listens on); the timeouts: some cases are silent for a long time.
CONFIG = """\
frontend={host},{port};no-tls
backend={backend_host},{backend_port};;proto=http/1.1
workers=1
no-ocsp=yes
backend-connections-per-host=64
host-rewrite=yes
backend-read-timeout={timeout}
backend-write-timeout={timeout}
stream-read-timeout=0
stream-write-timeout=0
accesslog-file={accesslog}
errorlog-file={errorlog}
"""
IDLE_TIMEOUT = "10m"


def nghttpx_version() -> str:
    """The first line of ``nghttpx --version``; raises ServerError when nghttpx is not installed."""
    binary = shutil.which("nghttpx")
    if binary is None:
        raise ServerError(
            "nghttpx is not installed (Debian package nghttp2-proxy; tests/peers/install_http2_peers.sh installs it)"
        )
    answer = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return answer.stdout.strip().splitlines()[0] if answer.stdout.strip() else "nghttpx (unknown version)"


@contextmanager
def nghttpx_front(backend_url: str, workdir: Path) -> Iterator[str]:
    """Run nghttpx in front of the WebSocket server at ``backend_url``; yield the front's ``ws://`` URL.

    The configuration, the access log and the error log are written to ``workdir``.
    """
    nghttpx_version()
    backend = urlsplit(backend_url)
    port = _free_port()
    config = workdir / "nghttpx.conf"
    errorlog = workdir / "nghttpx.log"
    errorlog.write_text("")
    config.write_text(
        CONFIG.format(
            host=HOST,
            port=port,
            backend_host=backend.hostname,
            backend_port=backend.port,
            timeout=IDLE_TIMEOUT,
            accesslog=workdir / "nghttpx-access.log",
            errorlog=errorlog,
        )
    )
    process = subprocess.Popen(
        ["nghttpx", f"--conf={config}"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None:
                raise ServerError(f"nghttpx exited with {process.returncode}:\n{errorlog.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise ServerError(f"nghttpx did not listen within {START_TIMEOUT:.0f}s; see {errorlog}")
            time.sleep(0.1)
        yield f"ws://{HOST}:{port}"
    finally:
        _stop(process)
