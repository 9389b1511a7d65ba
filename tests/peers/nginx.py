"""nginx (Debian ``nginx-light``) as a WebSocket reverse proxy on loopback, in the foreground.

One worker, every path under a prefix folder of its own. Plain (``ws://``) or TLS (``listen … ssl``,
optionally ``http2``: nginx 1.22 then offers h2 by ALPN without RFC 8441's extended CONNECT, the
negative HTTP/2 peer a real deployment has).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .spawn import Spawned, free_port

__all__ = ["start_nginx", "nginx_binary"]

CONF = """\
worker_processes 1;
pid {folder}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port}{listen};
        {tls}
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or (str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None)


def start_nginx(folder: Path, backend: int, *, certfile: Path | None = None, http2: bool = False) -> Spawned:
    """nginx on 127.0.0.1 (``.port``) proxying WebSocket upgrades to 127.0.0.1:``backend``.

    ``certfile`` (key and certificate chain in one PEM) turns TLS on; ``http2`` adds ``http2`` to
    the ``listen`` line (TLS only). The caller stops it with ``.stop()``.
    """
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian package nginx-light)")
    port = free_port()
    listen = ""
    tls = ""
    if certfile is not None:
        listen = " ssl http2" if http2 else " ssl"
        tls = f"ssl_certificate {certfile}; ssl_certificate_key {certfile};"
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(CONF.format(folder=folder, port=port, listen=listen, tls=tls, backend=backend))
    argv = [binary, "-p", str(folder), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"]
    return Spawned(argv, r"start worker process", folder / "nginx.log", listening=port)
