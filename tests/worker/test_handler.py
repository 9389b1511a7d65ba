"""websync.Handler: its defaults, backoff, and every callback and return value against a real server."""

from __future__ import annotations

import logging

import pytest
from worker_peers import Recorder, free_port, path_of, unique_url

import websync
from websync.worker.handler import Attempts

pytestmark = pytest.mark.timeout(15)


# -- backoff --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt, delay", [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 3.2)])
def test_backoff_nominal_delays_grow_exponentially(attempt, delay):
    assert websync.backoff(attempt, jitter=0) == pytest.approx(delay)


@pytest.mark.parametrize("attempt", [1, 2, 5, 9])
def test_backoff_jitters_by_default(attempt):
    nominal = websync.backoff(attempt, jitter=0)
    delays = [websync.backoff(attempt) for _ in range(200)]
    assert all(nominal / 2 - 1e-9 <= d <= nominal + 1e-9 for d in delays)
    assert len(set(delays)) > 100


def test_backoff_is_capped_at_max():
    assert websync.backoff(9, jitter=0) == 30.0  # 0.2 * 2**8 = 51.2
    assert websync.backoff(1000, jitter=0) == 30.0
    assert websync.backoff(100_000, jitter=0) == 30.0  # 2.0**99_999 overflows a float
    assert websync.backoff(3, min=1, max=3, jitter=0) == 3
    assert websync.backoff(2, min=1, max=5, jitter=0) == 2


def test_backoff_factor_is_the_growth_per_attempt():
    assert websync.backoff(3, min=1, factor=1, jitter=0) == 1
    assert websync.backoff(3, min=1, factor=3, jitter=0) == 9


def test_backoff_jitter_spreads_below_the_delay():
    delays = [websync.backoff(3, jitter=0.5) for _ in range(200)]
    assert all(0.4 - 1e-9 <= d <= 0.8 + 1e-9 for d in delays)
    assert len(set(delays)) > 100
    assert min(delays) < 0.5 and max(delays) > 0.7  # spread over the range, not a constant shift


def test_backoff_without_jitter_is_deterministic():
    assert {websync.backoff(2, jitter=0) for _ in range(20)} == {websync.backoff(2, jitter=0)}


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_backoff_refuses_jitter_outside_0_to_1(jitter):
    with pytest.raises(ValueError, match="jitter"):
        websync.backoff(1, jitter=jitter)


# -- attempts -------------------------------------------------------------------------------------


def test_attempts_count_failures_and_short_connections_in_a_row():
    attempts = Attempts(stable_after=10)
    assert attempts.failed() == 1
    assert attempts.failed() == 2
    attempts.connected(100.0)
    assert attempts.ended(100.5) == 3  # accepted, then closed at once: still failing
    attempts.connected(101.0)
    assert attempts.ended(111.0) == 1  # lasted stable_after: the count starts again
    assert attempts.failed() == 2


def test_handler_stable_after_defaults_to_10_seconds():
    assert websync.Handler.stable_after == 10.0


# -- the defaults ---------------------------------------------------------------------------------


class Bare(websync.Handler):
    pass


def test_default_connect_returns_the_url_attribute():
    handler = Bare()
    handler.url = "ws://example.invalid/"
    assert handler.connect() == "ws://example.invalid/"


def test_default_connect_without_url_raises():
    with pytest.raises(NotImplementedError):
        Bare().connect()


def test_default_handle_ping_answers_with_a_pong_of_the_same_data():
    assert Bare().handle_ping(websync.Ping(b"abc")) == websync.Pong(b"abc")


def test_default_handle_disconnect_reconnects_after_backoff():
    handler = Bare()
    for attempt in (1, 2, 3, 4):
        decision = handler.handle_disconnect(ConnectionError(), attempt)
        assert isinstance(decision, websync.Reconnect)
        nominal = websync.backoff(attempt, jitter=0)
        assert nominal / 2 <= decision.delay <= nominal  # jittered


def test_default_handle_error_reraises():
    error = ValueError("x")
    with pytest.raises(ValueError) as info:
        Bare().handle_error(error)
    assert info.value is error


def test_other_defaults_return_none():
    handler = Bare()
    assert handler.handle_connect(None) is None  # type: ignore[arg-type]
    assert handler.handle_frame(websync.Text("x")) is None
    assert handler.handle_pong(websync.Pong(b"")) is None
    assert handler.handle_close(websync.Close(1000, "")) is None
    assert handler.handle_info("x") is None
    assert handler.terminate("normal") is None  # type: ignore[func-returns-value]


def test_stop_and_reconnect_values():
    assert websync.Stop().reason == "normal"
    assert websync.Stop("x").reason == "x"
    assert websync.Reconnect(0.5).delay == 0.5


def test_a_handler_with_only_a_url_works_with_a_real_server(server, spawn):
    """The plain base class (no override at all) connects, answers pings and stops."""
    url = unique_url(server)
    handler = Bare()
    handler.url = url
    worker = spawn(handler)
    server.wait_event(lambda e: e["event"] == "open" and e["path"] == path_of(url))
    worker.stop()
    assert worker.exit_reason == "normal"


def test_connect_details_add_headers_and_override_options_for_each_attempt(server, spawn):
    """``connect()`` returning ``(url, headers, options)``: its headers go after start()'s, its
    options replace start()'s for that attempt (here the subprotocol offered)."""
    url = unique_url(server)

    class Detailed(Bare):
        def connect(self):
            return url, {"X-Attempt": "1"}, {"subprotocols": ["chat"]}

    worker = spawn(Detailed(), headers={"X-Default": "yes"}, subprotocols=["ignored"])
    opened = server.wait_event(lambda e: e["event"] == "open" and e["path"] == path_of(url))
    headers = {name.lower(): value for name, value in opened["headers"]}
    assert headers["x-default"] == "yes"
    assert headers["x-attempt"] == "1"
    assert headers["sec-websocket-protocol"] == "chat"
    worker.stop()


def test_connect_details_with_an_unknown_option_end_the_worker_with_a_type_error(spawn):
    class Misspelt(Bare):
        def connect(self):
            return "ws://127.0.0.1:9/", {}, {"clsoe_timeout": 1}

    worker = spawn(Misspelt())
    assert worker.join(5)
    assert isinstance(worker.exit_reason, TypeError)
    assert "clsoe_timeout" in str(worker.exit_reason)


# -- return values --------------------------------------------------------------------------------


def test_handle_connect_returning_a_list_sends_it_in_order(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_connect": lambda r: [websync.Text(str(i)) for i in range(5)]})
    spawn(rec)
    assert rec.wait_frames(5) == ["0", "1", "2", "3", "4"]


def test_handle_connect_frames_go_before_frames_queued_earlier(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_connect": lambda r: websync.Text("hello-first")})
    worker = spawn(rec)
    worker.send("queued")
    assert rec.wait_frames(2) == ["hello-first", "queued"]


def test_handle_frame_returning_a_frame_sends_it(server, spawn):
    def reply(frame):
        return websync.Binary(b"re:" + frame.data.encode()) if frame.data == "question" else None

    rec = Recorder(unique_url(server), hooks={"handle_frame": reply})
    worker = spawn(rec)
    worker.send("question")
    assert rec.wait_frames(2) == ["question", b"re:question"]


def test_handle_frame_returning_none_sends_nothing(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    worker.send("a")
    worker.send("b")
    assert rec.wait_frames(2) == ["a", "b"]
    worker.send("c")
    assert rec.wait_frames(3) == ["a", "b", "c"]  # nothing in between: None sent nothing


def test_handle_ping_default_reply_reaches_the_server(server, spawn):
    rec = Recorder(unique_url(server))
    worker = spawn(rec)
    worker.send("cmd:ping:abc")
    assert rec.wait_frames(1) == ["pong:abc"]
    assert rec.of("ping") == [("ping", b"abc")]


def test_handle_ping_returning_none_sends_no_pong(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_ping": lambda frame: None})
    worker = spawn(rec)
    worker.send("cmd:ping:abc:0.3")
    assert rec.wait_frames(1) == ["nopong:abc"]


def test_handle_ping_returning_a_list(server, spawn):
    rec = Recorder(
        unique_url(server), hooks={"handle_ping": lambda f: [websync.Pong(f.data), websync.Text("after-ping")]}
    )
    worker = spawn(rec)
    worker.send("cmd:ping:xyz")
    rec.wait_frames(2)
    assert sorted(rec.frames()) == ["after-ping", "pong:xyz"]


def test_handle_pong_gets_the_answer_to_our_ping_and_may_reply(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_pong": lambda f: websync.Text("got " + bytes(f.data).decode())})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send(websync.Ping(b"xy"))
    assert rec.wait_frames(1) == ["got xy"]
    assert rec.of("pong") == [("pong", b"xy")]


def test_handle_close_gets_the_peer_close_frame_and_the_close_is_answered(server, spawn):
    url = unique_url(server)
    rec = Recorder(url, hooks={"handle_disconnect": lambda arg: websync.Stop("done")})
    worker = spawn(rec)
    worker.send("cmd:close:4002:going")
    assert worker.join(5)
    assert rec.of("close") == [("close", 4002, "going")]
    answer = server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))
    assert answer["code"] == 4002  # RFC 6455 5.5.1: the answer echoes the status code
    kinds = [e[0] for e in rec.events]
    assert kinds.index("close") < kinds.index("disconnect") < kinds.index("terminate")


# -- Stop from every callback ---------------------------------------------------------------------


STOP_TRIGGERS = {
    "handle_connect": lambda worker: None,
    "handle_frame": lambda worker: worker.send("trigger"),
    "handle_info": lambda worker: worker.send_info("trigger"),
    "handle_ping": lambda worker: worker.send("cmd:ping:trigger:0.2"),
    "handle_pong": lambda worker: worker.send(websync.Ping(b"trigger")),
}


@pytest.mark.parametrize("callback", sorted(STOP_TRIGGERS))
def test_stop_from_a_callback_closes_with_1000_and_ends_the_worker(server, spawn, callback):
    url = unique_url(server)
    reason = f"stopped-by-{callback}"
    rec = Recorder(url, hooks={callback: lambda arg: websync.Stop(reason)})
    worker = spawn(rec)
    if callback != "handle_connect":
        rec.wait_count("handle_connect")
    STOP_TRIGGERS[callback](worker)
    assert worker.join(5)
    assert worker.exit_reason == reason
    assert rec.of("terminate") == [("terminate", reason)]
    closed = server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))
    assert closed["code"] == 1000
    assert rec.count("disconnect") == 0


def test_stop_shutdown_from_a_callback_closes_with_1001(server, spawn):
    url = unique_url(server)
    rec = Recorder(url, hooks={"handle_info": lambda arg: websync.Stop("shutdown")})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send_info("go")
    assert worker.join(5)
    assert worker.exit_reason == "shutdown"
    assert server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))["code"] == 1001


def test_stop_from_handle_close_ends_the_worker(server, spawn):
    rec = Recorder(unique_url(server), hooks={"handle_close": lambda frame: websync.Stop("peer-closed")})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send("cmd:close:1000:")
    assert worker.join(5)
    assert worker.exit_reason == "peer-closed"
    assert rec.count("disconnect") == 0
    assert rec.of("terminate") == [("terminate", "peer-closed")]


def test_stop_from_handle_info_while_disconnected(spawn):
    rec = Recorder(f"ws://127.0.0.1:{free_port()}/", hooks={"handle_info": lambda m: websync.Stop(m)})
    worker = spawn(rec)
    rec.wait_count("disconnect")
    worker.send_info("bye")
    assert worker.join(5)
    assert worker.exit_reason == "bye"


# -- errors in callbacks --------------------------------------------------------------------------


def test_a_crashing_callback_ends_the_worker_with_its_exception(server, spawn, caplog):
    error = ValueError("boom")

    def explode(frame):
        if frame.data == "boom":
            raise error

    url = unique_url(server)
    rec = Recorder(url, hooks={"handle_frame": explode})
    worker = spawn(rec)
    caplog.set_level(logging.DEBUG)
    worker.send("boom")
    assert worker.join(5)
    assert worker.exit_reason is error
    # The peer learns of the crash: close code 1011 (internal error), not a dropped connection.
    assert server.wait_event(lambda e: e["event"] == "close" and e["path"] == path_of(url))["code"] == 1011
    assert not worker.is_alive()
    assert rec.of("error") == [("error", error)]
    assert rec.of("terminate") == [("terminate", error)]
    with_traceback = [r for r in caplog.records if r.exc_info and r.exc_info[1] is error]
    assert len(with_traceback) == 1, [r.getMessage() for r in with_traceback]
    assert with_traceback[0].levelno >= logging.ERROR


def test_a_crashing_connect_ends_the_worker(spawn):
    class NoUrl(Recorder):
        def connect(self):
            self.record("connect")
            raise LookupError("no url")

    rec = NoUrl("unused")
    worker = spawn(rec)
    assert worker.join(5)
    assert isinstance(worker.exit_reason, LookupError)
    assert rec.of("terminate") == [("terminate", worker.exit_reason)]


def test_handle_error_may_swallow_the_error_and_the_worker_goes_on(server, spawn):
    def explode(frame):
        if frame.data == "boom":
            raise KeyError("boom")

    rec = Recorder(unique_url(server), hooks={"handle_frame": explode, "handle_error": lambda e: None})
    worker = spawn(rec)
    worker.send("boom")
    worker.send("after")
    assert rec.wait_frames(2) == ["boom", "after"]
    assert worker.is_alive()
    ((_, error),) = rec.of("error")
    assert isinstance(error, KeyError)


def test_handle_error_may_reply_or_stop(server, spawn):
    def explode(message):
        raise RuntimeError(message)

    def on_error(error):
        return websync.Stop(("failed", str(error))) if str(error) == "stop" else websync.Text(f"error: {error}")

    rec = Recorder(unique_url(server), hooks={"handle_info": explode, "handle_error": on_error})
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.send_info("first")
    assert rec.wait_frames(1) == ["error: first"]
    worker.send_info("stop")
    assert worker.join(5)
    assert worker.exit_reason == ("failed", "stop")


def test_terminate_raising_does_not_change_the_exit_reason(server, spawn, caplog):
    class BadTerminate(Recorder):
        def terminate(self, reason):
            super().terminate(reason)
            raise RuntimeError("terminate failed")

    rec = BadTerminate(unique_url(server))
    worker = spawn(rec)
    rec.wait_count("handle_connect")
    worker.stop()
    assert worker.exit_reason == "normal"
    assert rec.count("terminate") == 1
    assert any("terminate" in r.getMessage() and r.exc_info for r in caplog.records)
