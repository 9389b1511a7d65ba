"""Real proxies on loopback for the proxy tests: tinyproxy and squid (HTTP CONNECT, squid also as an
``https://`` proxy) and microsocks (SOCKS5), each started in the foreground and stopped by its PID.

Configuration facts (loopback-only settings, squid's CONNECT rules, tinyproxy's 401) are in
shared/PEERS.md; the binaries come from ``install_proxy_peers.sh`` beside this file (``make test`` runs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .spawn import Spawned, free_port

__all__ = [
    "BINARIES",
    "PASSWORD",
    "USER",
    "ProxyProcess",
    "free_port",
    "missing_binaries",
    "start_microsocks",
    "start_squid",
    "start_tinyproxy",
]

USER, PASSWORD = "proxyuser", "s3cret-proxy-pw"
"""The credentials of every proxy started with ``auth=True``."""

START_TIMEOUT = 20.0


@dataclass
class ProxyProcess:
    """A proxy server process; ``ports`` maps a scheme (``http``, ``https``, ``socks5``) to its port."""

    name: str
    spawned: Spawned
    ports: dict[str, int]
    workdir: Path
    auth: bool

    def url(self, scheme: str = "http", credentials: tuple[str, str] | None = None) -> str:
        """The proxy URL for ``scheme`` (its port), with ``credentials`` as userinfo."""
        userinfo = "" if credentials is None else f"{credentials[0]}:{credentials[1]}@"
        port = self.ports["socks5" if scheme.startswith("socks") else scheme]
        return f"{scheme}://{userinfo}127.0.0.1:{port}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        return (USER, PASSWORD) if self.auth else None

    def log(self) -> str:
        """What the proxy wrote (squid: its cache.log too)."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        """Terminate the process (kill it after 5 s) and remove its folder."""
        self.spawned.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _start(name: str, argv: list[str], ports: dict[str, int], workdir: Path, auth: bool) -> ProxyProcess:
    """Run ``argv`` and wait until every port accepts connections."""
    spawned = Spawned([_binary(argv[0]), *argv[1:]], "", workdir / f"{name}.log")  # ready: see the ports
    proxy = ProxyProcess(name, spawned, ports, workdir, auth)
    deadline = time.monotonic() + START_TIMEOUT
    waiting = set(ports.values())
    while waiting and time.monotonic() < deadline and spawned.process.poll() is None:
        for port in list(waiting):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                waiting.discard(port)
            except OSError:
                time.sleep(0.05)
    if waiting:
        output = proxy.log()
        proxy.stop()
        raise RuntimeError(f"{name} did not start: {output[-2000:]}")
    return proxy


def _workdir(name: str) -> Path:
    """A folder the ``proxy`` user can read (squid and its helpers drop privileges to it)."""
    path = Path(tempfile.mkdtemp(prefix=f"websync-{name}-"))
    path.chmod(0o755)
    return path


def start_tinyproxy(*, auth: bool) -> ProxyProcess:
    """tinyproxy: CONNECT to any port (no ConnectPort lines); Basic auth when ``auth``."""
    workdir = _workdir("tinyproxy")
    port = free_port()
    lines = [f"Port {port}", "Listen 127.0.0.1", "Bind 127.0.0.1", "Allow 127.0.0.1", "LogLevel Info", "MaxClients 100"]
    if auth:
        lines.append(f"BasicAuth {USER} {PASSWORD}")
    (workdir / "tinyproxy.conf").write_text("\n".join(lines) + "\n")
    argv = ["tinyproxy", "-d", "-c", str(workdir / "tinyproxy.conf")]
    return _start("tinyproxy", argv, {"http": port}, workdir, auth)


def start_squid(*, auth: bool, certfile: Path) -> ProxyProcess:
    """squid with an ``http_port`` and an ``https_port`` (``certfile``: key and chain in one PEM).

    CONNECT is allowed to every port (the stock config allows 443 only); everything stays on
    loopback; Basic auth through ``basic_ncsa_auth`` when ``auth``.
    """
    workdir = _workdir("squid")
    shutil.copy(certfile, workdir / "cert.pem")
    (workdir / "cert.pem").chmod(0o644)
    http_port, https_port = free_port(), free_port()
    lines = [
        f"http_port 127.0.0.1:{http_port}",
        f"https_port 127.0.0.1:{https_port} tls-cert={workdir}/cert.pem tls-key={workdir}/cert.pem",
        "pinger_enable off",
        "udp_incoming_address 127.0.0.1",
        "udp_outgoing_address 127.0.0.1",
        "dns_nameservers 127.0.0.1",
        "icp_port 0",
        "htcp_port 0",
        "cache deny all",
        "shutdown_lifetime 0 seconds",
        f"pid_filename {workdir}/squid.pid",
        f"cache_log {workdir}/cache.log",
        f"access_log {workdir}/access.log",
        f"coredump_dir {workdir}",
        "acl SSL_ports port 1-65535",
        "acl CONNECT method CONNECT",
        "http_access deny CONNECT !SSL_ports",
    ]
    if auth:
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", PASSWORD], check=True, capture_output=True, text=True
        ).stdout.strip()
        (workdir / "passwd").write_text(f"{USER}:{hashed}\n")
        (workdir / "passwd").chmod(0o644)
        lines += [
            f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {workdir}/passwd",
            "auth_param basic children 2 startup=1",
            "auth_param basic realm websync-tests",
            "acl authenticated proxy_auth REQUIRED",
            "http_access allow localhost authenticated",
        ]
    else:
        lines.append("http_access allow localhost")
    lines.append("http_access deny all")
    (workdir / "squid.conf").write_text("\n".join(lines) + "\n")
    shutil.chown(workdir, "proxy", "proxy")
    argv = ["squid", "-N", "-d1", "-f", str(workdir / "squid.conf")]
    return _start("squid", argv, {"http": http_port, "https": https_port}, workdir, auth)


def start_microsocks(*, auth: bool) -> ProxyProcess:
    """microsocks: SOCKS5, with username/password (RFC 1929) when ``auth``."""
    workdir = _workdir("microsocks")
    port = free_port()
    argv = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
    if auth:
        argv += ["-u", USER, "-P", PASSWORD]
    return _start("microsocks", argv, {"socks5": port}, workdir, auth)


BINARIES = ("tinyproxy", "squid", "microsocks")


def _binary(name: str) -> str:
    """The path of ``name`` (squid lives in /usr/sbin, which a non-root PATH may lack)."""
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin") or name


def missing_binaries() -> list[str]:
    """The proxy programs that are not installed."""
    return [name for name in BINARIES if _binary(name) == name]
