"""Life in a real OS process: cleanup at interpreter exit, and what a fork() leaves in the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from supervisors import FORKED, FunctionProcess, NotRunningError, Process, Supervisor, current_process, whereis

pytestmark = pytest.mark.timeout(20)

ROOT = Path(__file__).resolve().parents[2]

EXIT_SCRIPT = textwrap.dedent(
    """
    import atexit

    def report():  # registered before supervisors is imported, so it runs after its cleanup
        print("reasons", top.exit_reason, lone.exit_reason, deaf.exit_reason, flush=True)

    atexit.register(report)

    import supervisors as s

    class W(s.Process):
        def __init__(self, tag, deaf=False):
            super().__init__(name=tag)
            self.tag, self.deaf = tag, deaf

        def request_stop(self, reason):
            print("stop", self.tag, flush=True)
            if not self.deaf:
                super().request_stop(reason)

        def run(self):
            self.stop_requested.wait()
            return "shutdown"

    def spec(tag, **options):
        return s.ChildSpec(tag, lambda: W(tag, **options).start())

    inner = s.ChildSpec("inner", lambda: s.Supervisor([spec("b")]).start(), type="supervisor", shutdown=None)
    deaf_spec = s.ChildSpec("deaf", lambda: W("deaf", deaf=True).start(), shutdown=0.05)
    top = s.Supervisor([spec("a"), inner, deaf_spec]).start()
    deaf = s.whereis("deaf")
    lone = W("lone").start()
    print("main done", flush=True)
    """
)


def test_interpreter_exit_stops_trees_newest_first() -> None:
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "main done",
        "stop lone",
        "stop deaf",
        "stop deaf",  # killed after its 0.05 s shutdown: kill() asks once more
        "stop b",
        "stop a",
        "reasons shutdown shutdown killed",
    ]


def _in_forked_child(sup: Supervisor, old_worker: Process) -> str:
    """Check what the fork left, restart the tree, and describe any failure."""
    problems = []
    if sup.is_alive() or sup.exit_reason != FORKED or not sup.join(0):
        problems.append(f"supervisor not dead by fork: {sup!r}")
    if old_worker.is_alive() or old_worker.exit_reason != FORKED:
        problems.append(f"worker not dead by fork: {old_worker!r}")
    if whereis("fork-top") is not None or whereis("fork-worker") is not None:
        problems.append("dead processes still registered")
    try:
        sup.which_children()
        problems.append("call to a dead supervisor did not fail")
    except NotRunningError:
        pass
    sup.restart_after_fork()
    new_worker = whereis("fork-worker")
    if not sup.is_alive() or whereis("fork-top") is not sup:
        problems.append(f"supervisor not restarted: {sup!r}")
    if new_worker is None or new_worker is old_worker or not new_worker.is_alive():
        problems.append(f"worker not restarted: {new_worker!r}")
    running = [(child_id, process is not None and process.is_alive()) for child_id, process, _ in sup.which_children()]
    if running != [("w", True), ("other", True), ("stopped", False)]:
        problems.append(f"children not restarted: {sup.which_children()!r}")
    sup.stop()
    if sup.exit_reason != "shutdown" or new_worker is None or new_worker.exit_reason != "shutdown":
        problems.append("restarted tree did not stop cleanly")
    return "; ".join(problems) or "ok"


# Python 3.12+ warns about fork() in a process with threads, which is what this test does on purpose.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_marks_processes_dead_in_the_child_and_trees_restart(kit) -> None:
    specs = [kit.spec("w", name="fork-worker"), kit.spec("other"), kit.spec("stopped")]
    sup = kit.start(Supervisor(specs, name="fork-top"))
    old_worker = whereis("fork-worker")
    assert old_worker is not None
    sup.terminate_child("stopped")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        signal.alarm(10)  # a hang in the child must fail the test, not block it
        try:
            os.close(read_end)
            message = _in_forked_child(sup, old_worker)
            status = 0 if message == "ok" else 1
        except BaseException:  # noqa: BLE001 - whatever fails, the child must report it before os._exit
            message = traceback.format_exc()
        finally:
            os.write(write_end, message.encode())
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert message == "ok"
    assert os.waitstatus_to_exitcode(status) == 0
    assert sup.is_alive() and whereis("fork-top") is sup
    assert whereis("fork-worker") is old_worker and old_worker.is_alive()


def test_restart_after_fork_refuses_other_supervisors(kit) -> None:
    sup = kit.start(Supervisor([]))
    with pytest.raises(RuntimeError):
        sup.restart_after_fork()
    sup.stop()
    with pytest.raises(RuntimeError):
        sup.restart_after_fork()


# Python 3.12+ warns about fork() in a process with threads, which is what this test does on purpose.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_process_that_forks_stays_alive_in_the_child(kit) -> None:
    other = kit.start(kit.worker("other"))
    read_end, write_end = os.pipe()

    def forker() -> object:
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)
            me = current_process()
            ok = me is not None and me.is_alive() and other.exit_reason == FORKED
            os.write(write_end, b"ok" if ok else repr((me, other)).encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        return "normal"

    process = kit.start(FunctionProcess(forker))
    assert process.join(10)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == "ok"
    assert other.is_alive()
