"""Request/reply through one worker (websync.rpc) against a real echo server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import websync
from websync import Close, ConnectionClosed, Correlated, Text, WorkerNotFound

pytestmark = pytest.mark.timeout(20)


class Api(Correlated):
    """Correlates JSON echoes by their ``id``; keeps everything else."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.unmatched: list[str | bytes] = []
        self.got_unmatched = threading.Event()

    def correlate(self, frame: Text | websync.Binary) -> Hashable | None:
        key: Hashable | None = json.loads(frame.data).get("id")
        return key

    def handle_unmatched(self, frame: Text | websync.Binary) -> Close | None:
        self.unmatched.append(frame.data)
        self.got_unmatched.set()
        return None


class Dropper(Api):
    """Closes the connection (4000) when a message answers no request."""

    def handle_unmatched(self, frame: Text | websync.Binary) -> Close:
        return Close(4000, "unexpected")


def api_of(worker: websync.Worker) -> Api:
    """The worker's handler, an :class:`Api`."""
    handler = websync.get_state(worker)
    assert isinstance(handler, Api)
    return handler


def wait_connected(worker: websync.Worker) -> None:
    deadline = time.monotonic() + 5
    while websync.statistics(worker)["connected_since"] is None:
        assert time.monotonic() < deadline, "the worker did not connect"
        time.sleep(0.01)


@pytest.fixture
def api(echo_server) -> Iterator[websync.Worker]:
    worker = websync.start(Api(f"{echo_server.url}/"), name="rpc-api")
    wait_connected(worker)
    yield worker
    worker.stop()


def test_concurrent_requests_get_their_own_answers(api: websync.Worker) -> None:
    def ask(i: int) -> dict[str, int]:
        answer: dict[str, int] = json.loads(
            websync.request("rpc-api", json.dumps({"id": f"k{i}", "n": i}), key=f"k{i}", timeout=5)
        )
        return answer

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(ask, range(50)))
    assert [answer["n"] for answer in answers] == list(range(50))
    assert websync.statistics(api)["reconnects"] == 0
    assert api_of(api).unmatched == []


def test_timeout_and_the_late_answer_goes_to_handle_unmatched(api: websync.Worker) -> None:
    with pytest.raises(TimeoutError):
        websync.request(api, json.dumps({"id": "other"}), key="mine", timeout=0.3)
    handler = api_of(api)
    assert handler.got_unmatched.wait(5)
    assert handler.unmatched == ['{"id": "other"}']
    assert json.loads(websync.request(api, json.dumps({"id": "mine"}), key="mine", timeout=5)) == {"id": "mine"}


def test_a_key_already_waiting_is_refused(api: websync.Worker) -> None:
    waiting = threading.Thread(
        target=lambda: pytest.raises(TimeoutError, websync.request, api, "{}", key="k", timeout=1)
    )
    waiting.start()
    time.sleep(0.1)
    with pytest.raises(ValueError, match="already waiting"):
        websync.request(api, "{}", key="k", timeout=1)
    waiting.join()


def test_waiting_requests_fail_when_the_connection_is_lost(echo_server) -> None:
    worker = websync.start(Dropper(f"{echo_server.url}/"))
    try:
        wait_connected(worker)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as caught:
            websync.request(worker, json.dumps({"id": "dropped"}), key="never", timeout=10)
        assert caught.value.code == 4000
        assert time.monotonic() - started < 5
    finally:
        worker.stop()


def test_waiting_requests_fail_when_the_worker_exits_and_later_ones_at_once(api: websync.Worker) -> None:
    errors: list[BaseException] = []

    def wait_forever() -> None:
        try:
            websync.request(api, json.dumps({"id": "other"}), key="never", timeout=None)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    time.sleep(0.2)
    api.stop("shutdown")
    waiter.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosed)
    with pytest.raises(WorkerNotFound):
        websync.request(api, "{}", key="late", timeout=1)
    with pytest.raises(ConnectionClosed):
        api_of(api)._pending.add("late")


def test_names_and_handler_types_are_checked(echo_server) -> None:
    with pytest.raises(WorkerNotFound):
        websync.request("rpc-nobody", "{}", key=1, timeout=1)
    handler = websync.Handler()
    handler.url = f"{echo_server.url}/"
    plain = websync.start(handler, name="rpc-plain")
    try:
        with pytest.raises(TypeError, match="not a Correlated handler"):
            websync.request("rpc-plain", "{}", key=1, timeout=1)
    finally:
        plain.stop()
