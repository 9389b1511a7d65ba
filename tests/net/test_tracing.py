"""The tracer: websync.trace / trace_all / debug=["trace"] / connect(trace=True) / WEBSYNC_TRACE,
read back as ``websync.trace`` log records."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from worker_peers import Recorder, env_without_trace, free_port, path_of, unique_url

import websync

pytestmark = pytest.mark.timeout(15)

_names = iter(range(1, 1_000_000))


def unique_name() -> str:
    return f"traced-{next(_names)}"


@pytest.fixture
def trace_log(caplog):
    caplog.set_level(logging.DEBUG, logger="websync.trace")

    def lines(name: str) -> list[str]:
        """The trace lines that name worker ``name``, their prefix removed."""
        prefix = f"[{name}] "
        found = []
        for record in caplog.records:
            if record.name != "websync.trace":
                continue
            message = record.getMessage()
            if message.startswith(prefix):
                assert record.levelno == logging.DEBUG
                assert "\n" not in message  # one line per event
                found.append(message[len(prefix) :])
        return found

    return lines


@pytest.fixture
def no_trace_all():
    yield
    websync.trace_all(False)


def has(lines: list[str], fragment: str) -> bool:
    return any(fragment in line for line in lines)


def test_tracing_is_off_by_default(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name)
    worker.send("quiet")
    rec.wait_frames(1)
    worker.stop()
    assert trace_log(name) == []


def test_trace_switches_a_running_worker_on_and_off(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name)
    worker.send("quiet")
    rec.wait_frames(1)
    assert trace_log(name) == []

    websync.trace(worker, True)
    worker.send("loud")
    rec.wait_frames(2)
    lines = trace_log(name)
    assert "out TEXT 4 bytes 'loud'" in lines
    assert "in TEXT 4 bytes 'loud'" in lines
    assert not has(lines, "quiet")

    websync.trace(worker, False)
    count = len(trace_log(name))
    worker.send("quiet again")
    rec.wait_frames(3)
    assert len(trace_log(name)) == count


def test_debug_trace_covers_the_whole_life_of_a_worker(server, spawn, trace_log):
    name = unique_name()
    url = unique_url(server)
    rec = Recorder(url)
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send(b"\x01\x02")
    rec.wait_frames(1)
    worker.stop()
    lines = trace_log(name)
    assert has(lines, f"connecting to {url}")
    assert has(lines, f"GET {path_of(url)}")
    assert has(lines, "HTTP 101")
    assert has(lines, f"connected to {url}")
    assert "out BINARY 2 bytes b'\\x01\\x02'" in lines
    assert "in BINARY 2 bytes b'\\x01\\x02'" in lines
    assert has(lines, "closing: 1000")
    assert "out CLOSE 1000 ''" in lines  # close codes both ways
    assert "in CLOSE 1000 ''" in lines
    assert has(lines, "terminating: 'normal'")
    order = [
        next(i for i, line in enumerate(lines) if fragment in line)
        for fragment in ("connecting to", "HTTP 101", "out BINARY", "in BINARY", "out CLOSE", "in CLOSE", "terminating")
    ]
    assert order == sorted(order)


def test_trace_lines_for_pings_answered(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send("cmd:ping:abc")
    assert rec.wait_frames(1) == ["pong:abc"]
    lines = trace_log(name)
    assert "in PING 3 bytes b'abc'" in lines
    assert "out PONG 3 bytes b'abc'" in lines
    assert has(lines, "ping answered")


def test_trace_previews_are_bounded(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send("x" * 5000)
    worker.send(b"\x00" * 5000)
    rec.wait_frames(2)
    text = [line for line in trace_log(name) if line.startswith("out TEXT")]
    binary = [line for line in trace_log(name) if line.startswith("out BINARY")]
    assert len(text) == 1 and text[0].startswith("out TEXT 5000 bytes 'xxx")
    assert len(binary) == 1 and binary[0].startswith("out BINARY 5000 bytes b'\\x00")
    assert len(text[0]) < 200 and len(binary[0]) < 400


def test_trace_length_of_text_is_in_utf8_bytes(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send("h\u00e9llo")
    rec.wait_frames(1)
    assert "out TEXT 6 bytes 'h\u00e9llo'" in trace_log(name)


def test_unnamed_workers_get_a_label_of_their_own(server, spawn, caplog):
    caplog.set_level(logging.DEBUG, logger="websync.trace")
    first, second = Recorder(unique_url(server)), Recorder(unique_url(server))
    spawn(first, debug=["trace"])
    spawn(second, debug=["trace"])
    first.wait_count("handle_connect")
    second.wait_count("handle_connect")
    labels = {
        r.getMessage().split("]")[0] + "]"
        for r in caplog.records
        if r.name == "websync.trace" and "connecting to" in r.getMessage()
    }
    assert len(labels) >= 2 and all(label.startswith("[worker-") for label in labels)


def test_trace_redacts_headers_given_as_an_option(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name, debug=["trace"], headers={"Authorization": "Basic b3B0aW9u"})
    rec.wait_count("handle_connect")
    worker.stop()
    lines = trace_log(name)
    assert has(lines, "<redacted>") and not has(lines, "b3B0aW9u")


def test_trace_close_code_sent_by_the_peer(server, spawn, trace_log):
    name = unique_name()
    rec = Recorder(unique_url(server), hooks={"handle_disconnect": lambda arg: websync.Stop("done")})
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send("cmd:close:4003:why")
    assert worker.join(5)
    lines = trace_log(name)
    assert "in CLOSE 4003 'why'" in lines
    assert has(lines, "close received: 4003")


def test_trace_shows_our_answer_to_the_peer_close(server, spawn, trace_log):
    name = unique_name()
    url = unique_url(server)
    rec = Recorder(url, hooks={"handle_disconnect": lambda arg: websync.Stop("done")})
    worker = spawn(rec, name=name, debug=["trace"])
    worker.send("cmd:close:4003:why")
    assert worker.join(5)
    assert server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))["code"] == 4003
    assert has(trace_log(name), "out CLOSE 4003")


def test_trace_forced_close(silent_peers, spawn, trace_log):
    name = unique_name()
    peer = silent_peers()
    rec = Recorder(peer.url)
    worker = spawn(rec, name=name, debug=["trace"], close_timeout=0.2)
    rec.wait_count("handle_connect")
    worker.stop()
    lines = trace_log(name)
    assert "out CLOSE 1000 ''" in lines
    assert has(lines, "connection lost: close handshake timed out")


def test_trace_connect_failures_and_reconnect_delays(spawn, trace_log):
    name = unique_name()
    rec = Recorder(f"ws://127.0.0.1:{free_port()}/", delay=0.05)
    worker = spawn(rec, name=name, debug=["trace"])
    rec.wait_count("disconnect", 2)
    worker.stop()
    lines = trace_log(name)
    assert has(lines, "connection attempt 1 failed")
    assert has(lines, "reconnecting in 0.050s")


def test_trace_redacts_authorization_and_cookie_from_handler_connect(server, spawn, trace_log):
    name = unique_name()
    url = unique_url(server)
    rec = Recorder(url)
    rec.details = (url, {"Authorization": "Bearer s3cr3t-token", "cookie": "session=c00kie-value"})
    worker = spawn(rec, name=name, debug=["trace"])
    rec.wait_count("handle_connect")
    worker.stop()
    opened = server.wait_event(lambda e: e["event"] == "open" and e["path"] == path_of(url))
    sent = {k.lower(): v for k, v in opened["headers"]}
    assert sent["authorization"] == "Bearer s3cr3t-token"  # the real value went to the server
    assert sent["cookie"] == "session=c00kie-value"
    lines = trace_log(name)
    request = [line for line in lines if line.startswith(f"GET {path_of(url)}")]
    assert len(request) == 1
    assert "Authorization" in request[0] and "<redacted>" in request[0]
    assert not has(lines, "s3cr3t") and not has(lines, "c00kie")


def test_trace_redacts_credentials_from_the_url(server, spawn, trace_log):
    import base64

    name = unique_name()
    url = unique_url(server).replace("ws://", "ws://user:pa55word@")
    rec = Recorder(url)
    worker = spawn(rec, name=name, debug=["trace"])
    rec.wait_count("handle_connect")
    worker.stop()
    lines = trace_log(name)
    assert has(lines, "<redacted>")
    assert not has(lines, "pa55word")
    assert not has(lines, base64.b64encode(b"user:pa55word").decode())


def test_connect_trace_true(server, trace_log):
    url = unique_url(server)
    with websync.connect(url, trace=True) as ws:
        ws.send("via connect")
        assert ws.recv(timeout=5) == "via connect"
        websync.trace(ws, False)
        ws.send("after off")
        assert ws.recv(timeout=5) == "after off"
    lines = trace_log(f"client {url}")
    assert has(lines, "HTTP 101")
    assert "out TEXT 11 bytes 'via connect'" in lines
    assert "in TEXT 11 bytes 'via connect'" in lines
    assert not has(lines, "after off")


def test_connect_without_trace_is_quiet(server, trace_log):
    url = unique_url(server)
    with websync.connect(url) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    assert trace_log(f"client {url}") == []


def test_trace_all_covers_current_and_future_workers(server, spawn, trace_log, no_trace_all):
    before, after, own = unique_name(), unique_name(), unique_name()
    rec_before = Recorder(unique_url(server))
    worker_before = spawn(rec_before, name=before)
    rec_own = Recorder(unique_url(server))
    worker_own = spawn(rec_own, name=own, debug=["trace"])
    rec_before.wait_count("handle_connect")

    websync.trace_all(True)
    worker_before.send("one")
    rec_before.wait_frames(1)
    assert "out TEXT 3 bytes 'one'" in trace_log(before)

    rec_after = Recorder(unique_url(server))
    spawn(rec_after, name=after)
    rec_after.wait_count("handle_connect")
    assert has(trace_log(after), "connecting to")

    websync.trace_all(False)
    worker_before.send("two")
    rec_before.wait_frames(2)
    assert not has(trace_log(before), "'two'")
    worker_own.send("mine")  # its own switch is still on
    rec_own.wait_frames(1)
    assert "out TEXT 4 bytes 'mine'" in trace_log(own)


def test_trace_off_for_one_worker_while_trace_all_is_on_keeps_it_traced(server, spawn, trace_log, no_trace_all):
    name = unique_name()
    rec = Recorder(unique_url(server))
    worker = spawn(rec, name=name)
    rec.wait_count("handle_connect")
    websync.trace_all(True)
    websync.trace(worker, False)
    worker.send("still")
    rec.wait_frames(1)
    assert "out TEXT 5 bytes 'still'" in trace_log(name)


ENV_SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s|%(message)s")
    import websync

    class H(websync.Handler):
        url = sys.argv[1]
        connected = threading.Event()
        def handle_connect(self, response):
            self.connected.set()

    handler = H()
    worker = websync.start(handler, name="env-worker")
    assert handler.connected.wait(5)
    worker.stop()
    print("done")
    """
)


@pytest.mark.parametrize("value, traced", [("1", True), ("0", False), (None, False)])
def test_websync_trace_environment_variable(server, value, traced):
    env = env_without_trace()
    if value is not None:
        env["WEBSYNC_TRACE"] = value
    url = unique_url(server)
    result = subprocess.run(
        [sys.executable, "-c", ENV_SCRIPT, url], env=env, capture_output=True, text=True, timeout=10, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "done"
    trace_lines = [line for line in lines if line.startswith("websync.trace|")]
    if traced:
        assert f"websync.trace|[env-worker] connecting to {url}" in trace_lines
        assert any("[env-worker] out CLOSE 1000" in line for line in trace_lines)
    else:
        assert trace_lines == []
