"""The worker against real peers: start/stop, reconnects, queueing while down, keepalive, statistics."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from typing import Any

import pytest
from peers.raw_server import OP_CLOSE, OP_TEXT, PeerConnection
from worker_peers import Recorder, ScriptedServer, free_port, path_of, unique_url

import websync
from websync.core.protocol import Protocol, Role

pytestmark = pytest.mark.timeout(15)


def closed_by_server_report(server: ScriptedServer, url: str) -> dict[str, Any]:
    report: dict[str, Any] = server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))
    return report


# -- start, send, stop ----------------------------------------------------------------------------


def test_start_returns_a_started_worker_that_connects_and_echoes(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    assert isinstance(worker, websync.Worker)
    assert worker.is_alive()
    rec.wait_count("handle_connect")
    assert rec.of("handle_connect") == [("handle_connect", 101)]
    worker.send("hi")
    worker.send(b"\x00\x01")
    worker.send(websync.Text("frame"))
    worker.send(websync.Binary(b"bin"))
    assert rec.wait_frames(4) == ["hi", b"\x00\x01", "frame", b"bin"]


def test_send_rejects_what_is_not_a_message(server, spawn):
    worker = spawn(Recorder(unique_url(server)))
    with pytest.raises(TypeError):
        worker.send(42)


def test_stop_completes_the_close_handshake_with_1000(server, spawn):
    url = unique_url(server)
    rec = Recorder(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.stop()
    assert not worker.is_alive()
    assert worker.join(0)
    assert worker.exit_reason == "normal"
    assert closed_by_server_report(server, url)["code"] == 1000
    assert rec.of("close") == [("close", 1000, "")]  # the server's answer reached handle_close
    assert rec.of("terminate") == [("terminate", "normal")]
    assert rec.events[-1] == ("terminate", "normal")
    assert rec.count("disconnect") == 0  # a requested stop is no lost connection


def test_join_is_false_while_alive_and_stop_after_exit_is_harmless(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    assert worker.join(0.01) is False
    worker.stop()
    assert worker.join(0) is True
    worker.stop()
    assert worker.exit_reason == "normal"
    assert rec.count("terminate") == 1


def test_close_with_a_code_and_reason(server, spawn):
    url = unique_url(server)
    rec = Recorder(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.close(4000, "custom")
    assert worker.join(5)
    assert worker.exit_reason == "normal"
    closed = closed_by_server_report(server, url)
    assert (closed["code"], closed["reason"]) == (4000, "custom")


def messages_received_by(server: ScriptedServer, url: str) -> list[Any]:
    with server.cond:
        return [e["data"] for e in server.events if e["event"] == "message" and e["path"] == path_of(url)]


def blocking_info_handler(url: str) -> tuple[Recorder, threading.Event]:
    """A recorder whose handle_info("block") holds the worker until the event is set."""
    release = threading.Event()

    def on_info(message):
        if message == "block":
            assert release.wait(5)
            return None
        return websync.Text(message)

    return Recorder(url, hooks={"handle_info": on_info}), release


# Python 3.12+ warns about fork() in a process with threads, which is what this test does on purpose.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_during_a_wake_up_from_another_thread_can_still_send(server, spawn, monkeypatch):
    """The waker's lock, held at the fork by a thread that does not exist in the child, is a new
    one there: a send in the child would otherwise wait for it forever."""
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    entered, proceed = threading.Event(), threading.Event()
    real_write = os.write

    def write_after_a_pause(fd: int, data: bytes) -> int:
        if threading.current_thread() is sender:
            entered.set()
            proceed.wait(5)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_after_a_pause)
    sender = threading.Thread(target=worker.send_info, args=("in flight",))
    sender.start()
    assert entered.wait(5)
    worker._waker.drain()  # what the worker's thread does at its next turn: the next send writes again
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)  # a send waiting for the lock forever ends the child with SIGALRM
        worker.send("after the fork")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    proceed.set()
    sender.join(5)
    assert os.waitstatus_to_exitcode(status) == 0


def test_frames_sent_before_stop_are_delivered_before_the_close(server, spawn):
    url = unique_url(server)
    rec, release = blocking_info_handler(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send_info("block")
    rec.wait_count("info")  # the worker is busy: what follows lands in its mailbox together
    worker.send("last words")
    worker.request_stop("normal")  # what stop() posts before it joins
    release.set()
    assert worker.join(5)
    closed_by_server_report(server, url)
    assert messages_received_by(server, url) == ["last words"]


def test_send_and_send_info_keep_their_order(server, spawn):
    url = unique_url(server)
    rec, release = blocking_info_handler(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send_info("block")
    rec.wait_count("info")
    worker.send("first")
    worker.send_info("second")  # handle_info answers Text("second")
    release.set()
    assert rec.wait_frames(2) == ["first", "second"]


def test_bursts_of_sends_from_several_threads_all_go_out_in_each_threads_order(silent_peers, spawn):
    # worker.send() writes a wake-up byte only when none is pending. The peer never sends anything,
    # so nothing but those wake-ups gets the worker going: a lost one leaves messages queued.
    peer = silent_peers()
    rec = Recorder(peer.url)
    worker = spawn(rec, max_queue=None)
    rec.wait_count("handle_connect")
    threads, per_thread = 4, 300

    def burst(thread: int) -> None:
        for index in range(per_thread):
            worker.send(f"{thread}:{index}")
            if index % 50 == 49:
                time.sleep(0.01)  # let the worker drain its queue and sleep between bursts

    senders = [threading.Thread(target=burst, args=(thread,)) for thread in range(threads)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    reader = Protocol(Role.SERVER, max_size=None)
    received: list[str] = []
    parsed = 0
    deadline = time.monotonic() + 5
    while len(received) < threads * per_thread and time.monotonic() < deadline:
        time.sleep(0.01)
        data = bytes(peer.received[parsed:])  # the peer's thread appends meanwhile
        parsed += len(data)
        for frame in reader.receive_data(data):
            assert isinstance(frame, websync.Text)
            received.append(frame.data)
    assert len(received) == threads * per_thread
    for thread in range(threads):
        assert [int(text.split(":")[1]) for text in received if text.startswith(f"{thread}:")] == list(
            range(per_thread)
        )


def test_frames_sent_before_stop_are_delivered_when_the_worker_is_idle(server, spawn):
    url = unique_url(server)
    rec = Recorder(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send("last words")
    rec.wait_frames(1)
    worker.stop()
    assert messages_received_by(server, url) == ["last words"]


def test_stop_shutdown_closes_with_1001(server, spawn):
    url = unique_url(server)
    rec = Recorder(url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.stop("shutdown")
    assert worker.exit_reason == "shutdown"
    assert closed_by_server_report(server, url)["code"] == 1001
    assert rec.of("terminate") == [("terminate", "shutdown")]


def test_stop_forces_the_close_after_close_timeout_when_the_peer_never_answers(silent_peers, spawn):
    peer = silent_peers()
    rec = Recorder(peer.url)
    worker = spawn(rec, close_timeout=0.3)
    rec.wait_count("handle_connect")
    started = time.monotonic()
    worker.stop(timeout=5)
    elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert worker.exit_reason == "normal"  # not "killed": the worker ended by itself
    assert 0.25 <= elapsed < 3
    assert peer.received[:2] == b"\x88\x82"  # a masked close frame with a 2-byte body: the code
    assert rec.of("terminate") == [("terminate", "normal")]


def test_stop_while_waiting_to_reconnect_is_prompt(spawn):
    rec = Recorder(f"ws://127.0.0.1:{free_port()}/", delay=60)
    worker = spawn(rec)
    rec.wait_count("disconnect")
    started = time.monotonic()
    worker.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert worker.exit_reason == "normal"
    assert rec.of("terminate") == [("terminate", "normal")]


def test_stop_with_default_options_forces_the_close_before_it_kills(silent_peers):
    peer = silent_peers()
    rec = Recorder(peer.url)
    worker = websync.start(rec)  # all defaults
    try:
        rec.wait_count("handle_connect")
        worker.stop()
        assert worker.exit_reason == "normal"
        assert rec.of("terminate") == [("terminate", "normal")]
    finally:
        peer.close()  # lets a killed worker's thread end too


def test_stop_during_an_opening_handshake_is_bounded(silent_peers, spawn):
    peer = silent_peers(answer=False)  # accepts TCP, never answers the upgrade request
    rec = Recorder(peer.url)
    worker = spawn(rec, open_timeout=4)
    assert peer.connected.wait(5)
    worker.stop(timeout=1)
    assert worker.exit_reason == "normal"
    assert rec.of("terminate") == [("terminate", "normal")]


def test_frames_sent_right_after_start_go_out_before_the_stops_close(spawn):
    # `worker.send("hello"); worker.stop()` at once: the stop used to cancel the handshake and
    # drop "hello" silently (statistics: queued 1, frames_out 0). A stop keeps mailbox order.
    # websync's own server is the peer: it hands on every message that came before a close.
    received: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()

    class Recording(websync.ServerHandler):
        def handle_in(self, frame: websync.Text | websync.Binary) -> None:
            received.put(("message", frame.data))

        def terminate(self, reason: object) -> None:
            received.put(("closed", getattr(reason, "code", reason)))

    with websync.serve(Recording) as server:
        for _ in range(20):
            worker = spawn(Recorder(f"ws://127.0.0.1:{server.port}/"))
            worker.send("hello")
            worker.send(b"world")
            worker.stop()
            assert worker.exit_reason == "normal"
            events = [received.get(timeout=5) for _ in range(3)]
            assert events == [("message", "hello"), ("message", b"world"), ("closed", 1000)]
            assert websync.statistics(worker)["dropped"] == 0


def test_frames_that_never_go_out_are_counted_and_logged(spawn, caplog):
    worker = spawn(Recorder(f"ws://127.0.0.1:{free_port()}/", delay=60))  # nobody listens
    for message in ("a", "b", "c"):
        worker.send(message)
    with caplog.at_level("WARNING", logger="websync"):
        worker.stop(timeout=2)
    assert websync.statistics(worker)["dropped"] == 3
    assert any("3 queued frame(s) unsent" in record.getMessage() for record in caplog.records)


def test_overflow_drops_are_counted(spawn):
    worker = spawn(Recorder(f"ws://127.0.0.1:{free_port()}/", delay=60), max_queue=2, overflow="drop_oldest")
    for message in ("a", "b", "c", "d"):
        worker.send(message)
    assert websync.statistics(worker)["dropped"] == 2 and worker.queued == 2


# -- reconnects and the queue ---------------------------------------------------------------------


def test_reconnect_order_of_callbacks_and_frames_queued_while_down(own_server, spawn):
    own_server.start()
    rec = Recorder(own_server.url)
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send("before")
    assert rec.wait_frames(1) == ["before"]

    own_server.kill()
    rec.wait_for(lambda events: any(e[0] == "disconnect" and e[2] >= 2 for e in events))
    lost = rec.of("disconnect")[0]
    assert isinstance(lost[1], websync.ConnectionClosed) and lost[1].code == 1006
    assert lost[2] == 1
    failed = rec.of("disconnect")[1]
    assert isinstance(failed[1], websync.TransportError)  # connection refused

    for i in range(5):
        worker.send(f"q{i}")
    assert websync.statistics(worker)["queued"] == 5

    own_server.start(port=own_server.port)
    assert rec.wait_frames(6) == ["before", "q0", "q1", "q2", "q3", "q4"]
    assert websync.statistics(worker)["queued"] == 0
    worker.stop()

    kinds = [e[0] for e in rec.events]
    assert kinds[:4] == ["connect", "handle_connect", "frame", "disconnect"]
    # then failed attempts: connect() then handle_disconnect, attempt counting up ...
    n_failed = rec.count("disconnect") - 1
    assert kinds[4 : 4 + 2 * n_failed] == ["connect", "disconnect"] * n_failed
    assert [e[2] for e in rec.of("disconnect")] == list(range(1, n_failed + 2))
    # ... then the successful reconnect, the queued frames, the close and terminate
    assert kinds[4 + 2 * n_failed :] == ["connect", "handle_connect"] + ["frame"] * 5 + ["close", "terminate"]
    assert websync.statistics(worker)["reconnects"] == n_failed + 1


def test_connect_is_asked_before_every_attempt_and_its_details_apply(server, spawn):
    first, second = unique_url(server), unique_url(server)
    rec = Recorder(first)
    rec.details = (first, {"X-Attempt": "one"}, {"compression": None})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    opened = server.wait_event(lambda e: e["event"] == "open" and e["path"] == path_of(first))
    headers = {k.lower(): v for k, v in opened["headers"]}
    assert headers["x-attempt"] == "one"
    assert "sec-websocket-extensions" not in headers  # the options override applied

    rec.details = (second, [("X-Attempt", "two")])
    worker.send("cmd:close:1000:again")
    rec.wait_count("handle_connect", 2)
    opened = server.wait_event(lambda e: e["event"] == "open" and e["path"] == path_of(second))
    headers = {k.lower(): v for k, v in opened["headers"]}
    assert headers["x-attempt"] == "two"
    assert "sec-websocket-extensions" in headers  # defaults again: compression offered
    assert rec.count("connect") == 2


def test_attempts_count_failures_in_a_row_from_the_first_connect(spawn):
    rec = Recorder(f"ws://127.0.0.1:{free_port()}/", delay=0.01)
    spawn(rec)
    rec.wait_count("disconnect", 3)
    assert [e[2] for e in rec.of("disconnect")][:3] == [1, 2, 3]
    assert all(isinstance(e[1], websync.TransportError) for e in rec.of("disconnect"))
    assert rec.count("handle_connect") == 0


def test_handle_disconnect_reports_the_close_code_and_its_stop_ends_the_worker(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_disconnect": lambda arg: websync.Stop("gone")})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send("cmd:close:4001:bye")
    assert worker.join(5)
    assert rec.of("close") == [("close", 4001, "bye")]
    ((_, reason, attempt),) = rec.of("disconnect")
    assert isinstance(reason, websync.ConnectionClosed)
    assert (reason.code, reason.reason, attempt) == (4001, "bye", 1)
    assert worker.exit_reason == "gone"
    assert rec.of("terminate") == [("terminate", "gone")]


def test_handle_disconnect_returning_garbage_crashes_the_worker(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_disconnect": lambda arg: 3})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send("cmd:close:1000:")
    assert worker.join(5)
    assert isinstance(worker.exit_reason, TypeError)


@pytest.mark.parametrize(
    "overflow, expected",
    [("error", ["s0", "s1", "s2"]), ("drop_newest", ["s0", "s1", "s2"]), ("drop_oldest", ["s2", "s3", "s4"])],
)
def test_queue_overflow_policies(own_server, spawn, overflow, expected):
    port = free_port()
    rec = Recorder(f"ws://127.0.0.1:{port}/")
    worker = spawn(rec, max_queue=3, overflow=overflow)
    rec.wait_count("disconnect")  # nobody listens yet
    for i in range(5):
        if overflow == "error" and i >= 3:
            with pytest.raises(websync.QueueFull):
                worker.send(f"s{i}")
        else:
            worker.send(f"s{i}")
    own_server.start(port=port)
    assert rec.wait_frames(3) == expected  # the queue is flushed after the reconnect
    worker.send("end")
    assert rec.wait_frames(4) == [*expected, "end"]


def test_drop_oldest_stays_bounded_during_a_connection_attempt(silent_peers, spawn):
    peer = silent_peers(answer=False)  # the opening handshake hangs
    rec = Recorder(peer.url)
    worker = spawn(rec, max_queue=3, overflow="drop_oldest", open_timeout=1)
    assert peer.connected.wait(5)
    for i in range(10):
        worker.send(f"s{i}")
    assert websync.statistics(worker)["queued"] <= 3


def test_an_unknown_overflow_policy_is_refused():
    with pytest.raises((ValueError, TypeError)):
        websync.Worker(Recorder("ws://127.0.0.1:9/"), overflow="drop-oldest")


def test_queue_full_is_a_websocket_error():
    assert issubclass(websync.QueueFull, websync.WebSocketError)


# -- send_info ------------------------------------------------------------------------------------


def test_send_info_runs_handle_info_in_the_worker_thread_and_sends_its_reply(server, spawn):
    message = object()
    rec = Recorder(
        unique_url(server), hooks={"handle_info": lambda m: websync.Text("info-reply") if m is message else None}
    )
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send_info(message)
    assert rec.wait_frames(1) == ["info-reply"]
    assert rec.of("info")[0][1] is message
    assert len(rec.threads) == 1 and threading.current_thread() not in rec.threads


def test_send_info_while_disconnected_queues_the_reply_until_connected(own_server, spawn):
    port = free_port()
    rec = Recorder(f"ws://127.0.0.1:{port}/", hooks={"handle_info": lambda m: [websync.Text(m), websync.Text(m + "!")]})
    worker = spawn(rec)
    rec.wait_count("disconnect")
    worker.send_info("early")
    rec.wait_count("info")
    own_server.start(port=port)
    assert rec.wait_frames(2) == ["early", "early!"]


# -- keepalive ------------------------------------------------------------------------------------


def test_keepalive_detects_a_peer_that_stops_answering(silent_peers, spawn):
    peer = silent_peers()
    rec = Recorder(peer.url, hooks={"handle_disconnect": lambda arg: websync.Stop("lost")})
    worker = spawn(rec, ping_interval=0.1, ping_timeout=0.3)
    rec.wait_count("handle_connect")
    assert worker.join(5)
    ((_, reason, attempt),) = rec.of("disconnect")
    assert isinstance(reason, websync.ConnectionClosed) and reason.code == 1006
    assert attempt == 1
    assert worker.exit_reason == "lost"
    assert peer.received[:1] == b"\x89"  # the keepalive ping went out


def test_keepalive_keeps_an_answering_peer(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec, ping_interval=0.05, ping_timeout=0.3)
    rec.wait_count("pong", 8)  # 8 keepalive pings answered: > 0.3 s of pinging
    assert rec.count("disconnect") == 0
    assert worker.is_alive()


def test_no_keepalive_pings_by_default(silent_peers, spawn):
    peer = silent_peers()
    rec = Recorder(peer.url)
    worker = spawn(rec, close_timeout=0.2)
    rec.wait_count("handle_connect")
    worker.send("marker")
    deadline = time.monotonic() + 2
    while len(peer.received) < 12 and time.monotonic() < deadline:  # 2 + 4 + 6 bytes: the marker frame
        time.sleep(0.01)
    assert peer.received[:1] == b"\x81"  # the first thing sent is our text frame, not a ping


# -- introspection --------------------------------------------------------------------------------


def test_get_state_returns_the_handler(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    assert websync.get_state(worker) is rec


def test_statistics_count_frames_and_bytes(server, spawn):
    rec = Recorder(unique_url(server))
    before = time.time()
    worker = spawn(rec, compression=None)
    rec.wait_count("handle_connect")
    worker.send("hello")
    rec.wait_frames(1)
    stats = websync.statistics(worker)
    assert set(stats) == {
        "frames_in",
        "frames_out",
        "bytes_in",
        "bytes_out",
        "queued",
        "dropped",
        "reconnects",
        "connected_since",
    }
    assert stats["frames_out"] == 1 and stats["bytes_out"] == 2 + 4 + 5  # header, mask, payload
    assert stats["frames_in"] == 1 and stats["bytes_in"] == 2 + 5
    assert stats["queued"] == 0 and stats["reconnects"] == 0
    assert before <= stats["connected_since"] <= time.time()
    worker.stop()
    assert websync.statistics(worker)["connected_since"] is None


def test_statistics_count_the_answer_to_the_peer_close(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_disconnect": lambda arg: websync.Stop("done")})
    worker = spawn(rec, compression=None)
    rec.wait_count("handle_connect")
    worker.send("cmd:close:4003:why")
    assert worker.join(5)
    stats = websync.statistics(worker)
    assert stats["frames_in"] == 1  # the server's close
    assert stats["frames_out"] == 2  # our text and our close answer


def test_statistics_count_frames_that_arrive_with_the_handshake_response(silent_peers, spawn):
    peer = silent_peers(after_handshake=b"\x81\x02hi")
    rec = Recorder(peer.url)
    worker = spawn(rec, close_timeout=0.2)
    assert rec.wait_frames(1) == ["hi"]
    stats = websync.statistics(worker)
    assert (stats["frames_in"], stats["bytes_in"]) == (1, 4)


def test_replies_to_messages_that_came_with_the_servers_close_go_before_the_close_reply(raw_server, spawn):
    # The server writes three messages and its close in one send: handle_frame's echoes go out
    # before the worker's close reply (they were dropped once the reply had gone).
    def script(peer: PeerConnection) -> list[tuple[int, bytes]]:
        peer.handshake()
        peer.send(b"".join(peer.encode_frame(OP_TEXT, text) for text in (b"a", b"b", b"c")))
        peer.send_frame(OP_CLOSE, b"\x03\xe8")  # glued to the messages by the loopback: one read
        peer.expect_close()
        return [(frame.opcode, frame.payload) for frame in peer.frames]

    class Echo(websync.Handler):
        def connect(self) -> str:
            return str(server.url)

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
            return frame

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
            return websync.Stop("normal")

    for _ in range(20):
        server = raw_server(script)
        worker = spawn(Echo(), compression=None)
        expected = [(OP_TEXT, b"a"), (OP_TEXT, b"b"), (OP_TEXT, b"c"), (OP_CLOSE, b"\x03\xe8")]
        assert server.result() == expected
        assert worker.join(5)
