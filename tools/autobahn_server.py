"""Start Autobahn's fuzzingserver on 127.0.0.1 and always stop it afterwards."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autobahn_install import AutobahnInstall

LAUNCHER = Path(__file__).with_name("autobahn_wstest.py")
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3
CASES_PREFIX = "Cases = "


class ServerError(RuntimeError):
    """The fuzzingserver did not start."""


class PortTaken(ServerError):
    """Another process bound the chosen port before the fuzzingserver could."""


@dataclass(frozen=True)
class FuzzingServer:
    """A running fuzzingserver: its base URL and its case ids (case N is ``cases[N - 1]``)."""

    url: str
    cases: list[str]
    log: Path


def wstest_command(install: AutobahnInstall, mode: str, spec_file: Path, *extra: str) -> list[str]:
    """The command that runs wstest in ``mode`` (fuzzingserver, fuzzingclient) with ``spec_file``,
    its listeners on loopback (``LAUNCHER``)."""
    python2, site_dir = str(install.python2), str(install.site_dir)
    return [python2, "-u", str(LAUNCHER), site_dir, "--mode", mode, "--spec", str(spec_file), *extra]


def _free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    """Tell whether something accepts TCP connections on the loopback port."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _announced_cases(log: Path) -> list[str] | None:
    """Return the case ids the server printed at start-up, or None before it has."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(CASES_PREFIX):
            return [str(case) for case in ast.literal_eval(line[len(CASES_PREFIX) :])]
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server, killing it if it does not exit promptly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(
    install: AutobahnInstall, spec: dict[str, object], workdir: Path
) -> tuple[subprocess.Popen[bytes], FuzzingServer]:
    """Start one server on a fresh port and wait until it accepts connections.

    Raises PortTaken if the port was taken meanwhile, ServerError if the
    server exits for another reason or does not start listening.
    """
    port = _free_port()
    url = f"ws://{HOST}:{port}"
    spec_file = workdir / "fuzzingserver.json"
    spec_file.write_text(json.dumps({**spec, "url": url}, indent=2))
    log = workdir / "fuzzingserver.log"
    command = wstest_command(install, "fuzzingserver", spec_file, "--webport", "0")
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                text = log.read_text(errors="replace")
                error = PortTaken if "CannotListenError" in text else ServerError
                raise error(f"fuzzingserver exited with {process.returncode}:\n{text}")
            cases = _announced_cases(log)
            if cases is not None and _listening(port):
                return process, FuzzingServer(url, cases, log)
            time.sleep(0.1)
        raise ServerError(f"fuzzingserver did not listen within {START_TIMEOUT:.0f}s; see {log}")
    except BaseException:
        _stop(process)
        raise


@contextmanager
def fuzzing_server(install: AutobahnInstall, cases: list[str], outdir: Path, workdir: Path) -> Iterator[FuzzingServer]:
    """Run a fuzzingserver for the given case patterns, writing its reports to ``outdir``.

    The server runs in its own session so that a Ctrl-C reaches only this
    process, which then stops the server on the way out, whatever happened.
    """
    spec: dict[str, object] = {"outdir": str(outdir), "cases": cases}
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            process, server = _start(install, spec, workdir)
            break
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
    try:
        yield server
    finally:
        _stop(process)
