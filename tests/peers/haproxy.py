"""HAProxy 2.6 (Debian ``haproxy``) as a WebSocket reverse proxy on loopback, in the foreground (``-db``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .spawn import Spawned, free_port

__all__ = ["start_haproxy", "haproxy_binary"]

CONF = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
frontend front
    bind 127.0.0.1:{port}{tls}
    default_backend back
backend back
    server origin 127.0.0.1:{backend}
"""


def haproxy_binary() -> str | None:
    """The haproxy executable, or None when it is not installed."""
    return shutil.which("haproxy") or (str(Path("/usr/sbin/haproxy")) if Path("/usr/sbin/haproxy").exists() else None)


def start_haproxy(folder: Path, backend: int, *, certfile: Path | None = None) -> Spawned:
    """HAProxy on 127.0.0.1 (``.port``) in front of 127.0.0.1:``backend``; TLS with ``certfile``
    (key and certificate chain in one PEM). The caller stops it with ``.stop()``."""
    binary = haproxy_binary()
    if binary is None:
        raise FileNotFoundError("haproxy is not installed (Debian package haproxy)")
    port = free_port()
    tls = "" if certfile is None else f" ssl crt {certfile}"
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "haproxy.cfg"
    conf.write_text(CONF.format(port=port, tls=tls, backend=backend))
    return Spawned([binary, "-f", str(conf), "-db"], "", folder / "haproxy.log", listening=port)
