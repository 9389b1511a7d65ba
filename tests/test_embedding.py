"""ProcessTree: one tree per OS process, started once however often it is asked, rebuilt after fork()."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import pytest

import websync
from supervisors import FORKED, Supervisor
from websync import ProcessTree, WorkerNotFound

pytestmark = pytest.mark.timeout(20)


class Echo(websync.Handler):
    url: str


@pytest.fixture
def tree(echo_server) -> Iterator[tuple[ProcessTree, list[Supervisor]]]:
    """A ProcessTree of one worker named "embedded", and the supervisors it built."""
    Echo.url = f"{echo_server.url}/"
    built: list[Supervisor] = []

    def build() -> Supervisor:
        built.append(Supervisor([websync.child_spec(Echo, id="echo", name="embedded")], name="embedding-test"))
        return built[-1]

    holder = ProcessTree(build)
    yield holder, built
    holder.stop()


def test_start_is_idempotent_across_threads(tree) -> None:
    holder, built = tree
    assert not holder.started
    results: list[Supervisor] = []
    threads = [threading.Thread(target=lambda: results.append(holder.start())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and results == [built[0]] * 8
    assert holder.started and isinstance(holder.whereis("embedded"), websync.Worker)


def test_stop_shuts_down_and_a_later_start_builds_a_new_tree(tree) -> None:
    holder, built = tree
    worker = holder.whereis("embedded")
    holder.stop(timeout=5)
    assert not holder.started and worker.exit_reason == "shutdown"
    with pytest.raises(WorkerNotFound):
        websync.request("embedded", "{}", key=1, timeout=1)
    assert holder.start() is built[1] and len(built) == 2


# Python 3.12+ warns about fork() in a process with threads, which is what this test does on purpose.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_builds_its_own_tree(tree) -> None:
    holder, built = tree
    parent_tree = holder.start()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's atexit handlers
        try:
            report = {
                "started_before": holder.started,
                "parent_tree_reason": repr(parent_tree.exit_reason),
                "rebuilt": holder.start() is not parent_tree,
                "worker_alive": holder.whereis("embedded").is_alive(),
            }
            holder.stop(timeout=5)
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert report == {
        "started_before": False,
        "parent_tree_reason": repr(FORKED),
        "rebuilt": True,
        "worker_alive": True,
    }
    assert holder.started and holder.start() is parent_tree and len(built) == 1


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_killing_an_inherited_worker_in_a_forked_child_leaves_the_parents_connection_alone(echo_server) -> None:
    # kill() in the child used to shut the shared socket down: the parent's worker lost its
    # connection (reconnects went to 1). In the child only the child's descriptor is closed.
    class Quiet(websync.Handler):
        url = f"{echo_server.url}/"

    worker = websync.start(Quiet())
    try:
        deadline = time.monotonic() + 5
        while websync.statistics(worker)["connected_since"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pid = os.fork()
        if pid == 0:  # the child: kill the inherited (fork-marked) worker, then leave at once
            try:
                worker.kill()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        worker.send("still here")
        while websync.statistics(worker)["frames_in"] == 0:  # the echo came back
            assert time.monotonic() < deadline + 5
            time.sleep(0.01)
        assert websync.statistics(worker)["reconnects"] == 0
    finally:
        worker.stop()
