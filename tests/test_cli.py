"""The command-line client (``python -m websync`` and the ``websync`` script) against real peers."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import websync
from websync.cli import ExitStatus, main

pytestmark = pytest.mark.timeout(30)


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "websync", *args], input=stdin, capture_output=True, text=True, timeout=20, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: ExitStatus, text: str) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("websync: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


def test_script_mode_sends_and_prints_the_answers(echo_server) -> None:
    result = run(f"{echo_server.url}/", "--send", "hello", "--send", "wörld")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\nwörld\n", "")


def test_headers_subprotocols_and_compression_reach_the_server(websockets_server, echo_server) -> None:
    server = websockets_server(subprotocols=["chat", "superchat"])
    result = run(f"{server.url}/request", "-H", "X-Token: abc", "-s", "superchat", "--no-compression", "-n", "1")
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    headers = {name.lower(): value for name, value in request["headers"]}
    assert headers["x-token"] == "abc" and headers["sec-websocket-protocol"] == "superchat"
    assert "sec-websocket-extensions" not in headers
    assert request["subprotocol"] == "superchat"
    compressed = json.loads(run(f"{echo_server.url}/request", "-n", "1").stdout)
    assert "permessage-deflate" in {n.lower(): v for n, v in compressed["headers"]}["sec-websocket-extensions"]


def test_trace_logs_frames_on_stderr(echo_server) -> None:
    result = run(f"{echo_server.url}/", "--trace", "--send", "traced")
    assert result.returncode == 0 and result.stdout == "traced\n"
    assert "out TEXT 6 bytes 'traced'" in result.stderr and "in TEXT 6 bytes 'traced'" in result.stderr


def test_interactive_mode_sends_lines_and_prints_messages(echo_server) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "websync", f"{echo_server.url}/"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        try:
            for line in ("first", "second"):
                process.stdin.write(line + "\n")
                process.stdin.flush()
                assert process.stdout.readline() == line + "\n"
            process.stdin.close()  # end of input: close 1000
            assert process.wait(10) == 0
            assert process.stderr is not None and "connection closed: 1000" in process.stderr.read()
        finally:
            process.kill()


def test_binary_messages_are_shown_as_hex(websockets_server) -> None:
    server = websockets_server(send=[{"hex": "00ff10"}])
    result = run(f"{server.url}/", "-n", "1")
    assert (result.returncode, result.stdout) == (0, "<3 bytes> 00ff10\n")


def test_refused_connection(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    assert_one_line_error(run(f"ws://127.0.0.1:{port}/", "--send", "x"), ExitStatus.CONNECTION, "refused")


def test_refused_handshake(raw_server) -> None:
    def refuse(peer) -> None:
        peer.read_request()
        peer.respond("403 Forbidden", [("Content-Length", "0")])

    server = raw_server(refuse)
    assert_one_line_error(run(server.url, "--send", "x"), ExitStatus.HANDSHAKE, "403")


def test_handshake_timeout(raw_server) -> None:
    server = raw_server(lambda peer: peer.wait_stop())
    assert_one_line_error(run(server.url, "--send", "x", "-t", "0.5"), ExitStatus.TIMEOUT, "no handshake within 0.5 s")


def test_answer_timeout(echo_server) -> None:
    result = run(f"{echo_server.url}/", "--send", "only one", "-n", "2", "-t", "0.5")
    assert result.stdout == "only one\n"
    assert_one_line_error(result, ExitStatus.TIMEOUT, "answer 2 of 2 did not come within 0.5 s")


def test_closed_before_the_answers(websockets_server) -> None:
    server = websockets_server(close_code=1011, close_reason="boom")
    assert_one_line_error(run(f"{server.url}/", "--send", "x"), ExitStatus.CLOSED, "1011")


def test_bad_arguments() -> None:
    assert_one_line_error(run("http://example.invalid/", "--send", "x"), ExitStatus.USAGE, "not a ws:// or wss:// URL")
    result = run("ws://127.0.0.1:1/", "-H", "no colon")
    assert result.returncode == 2 and "expected 'Name: value'" in result.stderr and "Traceback" not in result.stderr


def test_console_script(echo_server) -> None:
    script = shutil.which("websync", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is installed without its console script (reinstall: pip install -e .)")
    result = subprocess.run(
        [script, f"{echo_server.url}/", "--send", "via script"], capture_output=True, text=True, timeout=20, check=False
    )
    assert (result.returncode, result.stdout) == (0, "via script\n")


def test_piped_lines_all_come_back_from_websyncs_server() -> None:
    # `printf 'a\nb\nc\n' | python -m websync URL`: the lines and the client's close reach the
    # server in one read; every echo is printed before the close handshake ends (7-16 runs of 20
    # printed all three before the server answered the messages that came with a close).
    class Echo(websync.ServerHandler):
        def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
            return frame

    with websync.serve(Echo) as server:
        for _ in range(50):
            out = io.StringIO()
            status = main([f"ws://127.0.0.1:{server.port}/"], stdin=io.StringIO("a\nb\nc\n"), stdout=out)
            assert (status, out.getvalue()) == (ExitStatus.OK, "a\nb\nc\n")
