"""Run the Autobahn testsuite's client cases against websync (``make conformance``).

Installs the testsuite (it needs Python 2.7) into .autobahn/ when missing,
starts its fuzzingserver on 127.0.0.1, runs each case with an echo testee in
its own process (killed after --case-timeout), has the reports written to
reports/clients/, prints the verdicts per case category and exits 1 unless
every case is OK or INFORMATIONAL in both its behavior and its closing.

With --http2 the testee speaks WebSockets over HTTP/2 (RFC 8441) to nghttpx,
which fronts the fuzzingserver (it only speaks HTTP/1.1) and relays the
frames; see docs/conformance-http2.md for what the proxy changes.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path
from types import FrameType

from autobahn_install import AUTOBAHN_VERSION, InstallError, ensure_installed
from autobahn_server import ServerError, fuzzing_server
from conformance_report import CaseResult, case_key, failure_report, load_results, passed, summary_table
from conformance_testee import CLIENTS
from nghttpx_front import nghttpx_front, nghttpx_version

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".autobahn"
REPORTS_DIR = ROOT / "reports" / "clients"
HTTP2_REPORTS_DIR = ROOT / "reports" / "clients-h2"
HTTP2_SUFFIX = "-h2"  # agent names of the HTTP/2 run, e.g. websync-h2
TESTEE = Path(__file__).with_name("conformance_testee.py")
# The testee imports the websync of this work tree, whatever the venv has installed.
TESTEE_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

# Everything but compression, plus compression cases that cover each payload
# type (12.1 text, 12.2 binary), fragmented messages (12.1.11) and each of the
# seven permessage-deflate parameter sets the server answers with (13.1-13.7).
DEFAULT_CASES = [
    *(f"{category}.*" for category in (1, 2, 3, 4, 5, 6, 7, 9, 10)),
    "12.1.1",
    "12.1.2",
    "12.1.3",
    "12.1.11",
    "12.2.1",
    *(f"13.{family}.1" for family in range(1, 8)),
    "13.7.11",
]
CASE_PATTERN = re.compile(r"\*|\d+(\.\d+)*(\.\*)?")
# Without permessage-deflate these can only be UNIMPLEMENTED.
COMPRESSION_CATEGORIES = frozenset({12, 13})
CASE_TIMEOUT = 60.0
FULL_CASE_TIMEOUT = 300.0
SERVICE_TIMEOUT = 300.0  # getCaseCount and updateReports (writing all reports takes a while)


class RunError(RuntimeError):
    """The run could not be carried out (as opposed to cases that failed)."""


@dataclass(frozen=True)
class Agent:
    """A client configuration; the reports are filed under its name."""

    name: str
    compression: bool

    def runs(self, case_id: str) -> bool:
        """Whether this agent runs the case (compression cases need compression)."""
        return self.compression or case_key(case_id)[0] not in COMPRESSION_CATEGORIES


@dataclass
class Testee:
    """Runs conformance_testee.py, one process per request, with this interpreter (the project venv)."""

    client: str
    url: str
    case_timeout: float
    http2: bool = False

    def request(self, agent: Agent, action: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run one testee action; raises subprocess.TimeoutExpired after ``timeout`` seconds."""
        command = [
            sys.executable,
            str(TESTEE),
            "--client",
            self.client,
            "--url",
            self.url,
            "--agent",
            agent.name,
            "--compression",
            "deflate" if agent.compression else "none",
            *(["--http2"] if self.http2 else []),
            *action,
        ]
        return subprocess.run(
            command,
            env=TESTEE_ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def service(self, agent: Agent, action: str) -> str:
        """Run a request outside any case and return its output; raise RunError on failure."""
        try:
            result = self.request(agent, [action], SERVICE_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            raise RunError(f"{action} did not finish within {SERVICE_TIMEOUT:.0f}s") from error
        if result.returncode != 0:
            raise RunError(f"{action} failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return result.stdout

    def run_case(self, agent: Agent, number: int) -> str | None:
        """Run case ``number``; return what went wrong on the testee's side, if anything."""
        try:
            result = self.request(agent, ["run-case", str(number)], self.case_timeout)
        except subprocess.TimeoutExpired:
            return f"hung: killed after {self.case_timeout:g}s"
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no output)"]
            return f"exit {result.returncode}: {lines[-1]}"
        return None


@contextmanager
def exclusive_run(lock_file: Path) -> Iterator[None]:
    """Hold a lock for the whole run: two runs at once would overwrite each other's reports."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"another conformance run holds {lock_file}") from None
        yield


def plan_agents(name: str, full: bool) -> list[Agent]:
    """The default run offers compression; a full run also runs without it (agent ``name``-nocompress)."""
    agents = [Agent(name, compression=True)]
    if full:
        agents.append(Agent(f"{name}-nocompress", compression=False))
    return agents


def run_cases(
    testee: Testee, agents: list[Agent], cases: list[str], max_hangs: int
) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """Run every agent's cases; return the cases each agent was meant to run and the testee problems.

    After ``max_hangs`` hung cases the remaining ones are not run (they are
    reported as MISSING), so that a client that hangs everywhere cannot keep
    CI busy for hours.
    """
    planned = {agent.name: [case for case in cases if agent.runs(case)] for agent in agents}
    problems: dict[tuple[str, str], str] = {}
    hangs = 0
    numbered = list(enumerate(cases, start=1))
    for agent in agents:
        for category, group in itertools.groupby(numbered, key=lambda item: case_key(item[1])[0]):
            selected = [(number, case) for number, case in group if agent.runs(case)]
            started = time.monotonic()
            for number, case in selected:
                problem = testee.run_case(agent, number)
                if problem is None:
                    continue
                problems[(agent.name, case)] = problem
                print(f"  {agent.name} {case}: {problem}", flush=True)
                hangs += problem.startswith("hung")
                if hangs >= max_hangs:
                    print(f"{hangs} cases hung: the remaining cases are not run", flush=True)
                    return planned, problems
            if selected:
                elapsed = time.monotonic() - started
                print(f"{agent.name}: category {category}, {len(selected)} cases in {elapsed:.1f}s", flush=True)
    return planned, problems


def client_description(client: str, http2: bool) -> str:
    """Name the client under test and its version (and the HTTP/2 front, if any)."""
    if http2:
        return (
            f"`websync.connect(..., http2=True)` ({client} {metadata.version(client)}) over h2c through "
            f"{nghttpx_version()} in front of the fuzzingserver"
        )
    api = "websync.connect()" if client == "websync" else "websockets.sync.client.connect()"
    return f"`{api}` ({client} {metadata.version(client)})"


def markdown_summary(args: argparse.Namespace, agents: list[Agent], results: list[CaseResult], seconds: float) -> str:
    """The Markdown page written by a full run."""
    agent_lines = "\n".join(
        f"- `{agent.name}`: "
        + ("offers permessage-deflate" if agent.compression else "offers no compression; skips 12.* and 13.*")
        for agent in agents
    )
    failures = failure_report(results, markdown=True) or "None."
    return f"""# Autobahn testsuite conformance

Client cases of autobahntestsuite {AUTOBAHN_VERSION} against {client_description(args.client, args.http2)},
run with `{args.command}` on {date.today().isoformat()} in {seconds / 60:.1f} minutes.

{agent_lines}

A case passes when both its behavior and its closing behavior are OK or INFORMATIONAL;
NON-STRICT, UNIMPLEMENTED and every kind of failure count against it.
Time is the time the server measured for the cases.

## Summary

{summary_table(results, markdown=True)}

## Cases that did not pass

{failures}
"""


def case_patterns(text: str) -> list[str]:
    """Parse --cases: ids such as 7.1.1, optionally ending in .* (or * alone) for all cases below."""
    patterns = [pattern.strip() for pattern in text.split(",") if pattern.strip()]
    for pattern in patterns:
        if not CASE_PATTERN.fullmatch(pattern):
            raise argparse.ArgumentTypeError(f"not a case id or pattern: {pattern!r}")
    return patterns


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="run all cases, with and without compression offered, and write a Markdown summary",
    )
    parser.add_argument(
        "--cases",
        metavar="PATTERNS",
        type=case_patterns,
        help="comma-separated case ids or patterns to run instead, e.g. '6.*,7.1.1'",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="websync",
        help="client under test; 'websockets' runs the websockets library as a reference",
    )
    parser.add_argument(
        "--http2",
        action="store_true",
        help="run websync over HTTP/2 (RFC 8441) through nghttpx in front of the fuzzingserver; "
        f"agents are named CLIENT{HTTP2_SUFFIX}, reports go to {HTTP2_REPORTS_DIR.relative_to(ROOT)}",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        metavar="SECONDS",
        help=f"kill the testee when one case takes longer (default: {CASE_TIMEOUT:g}, with --full "
        f"{FULL_CASE_TIMEOUT:g}: the largest compression cases allow themselves up to 480)",
    )
    parser.add_argument(
        "--max-hangs",
        type=int,
        default=3,
        metavar="N",
        help="stop running cases after N of them hung (default: %(default)s)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="write a Markdown summary there (default with --full: docs/conformance.md, "
        "or docs/conformance-CLIENT.md for another client, docs/conformance-http2-results.md with --http2)",
    )
    args = parser.parse_args(argv)
    if args.http2 and args.client != "websync":
        parser.error("--http2 needs --client websync")
    args.command = shlex.join(["tools/conformance.py", *(sys.argv[1:] if argv is None else argv)])
    if args.case_timeout is None:
        args.case_timeout = FULL_CASE_TIMEOUT if args.full else CASE_TIMEOUT
    if args.full and args.markdown is None:
        suffix = "-http2-results" if args.http2 else "" if args.client == "websync" else f"-{args.client}"
        args.markdown = ROOT / "docs" / f"conformance{suffix}.md"
    return args


def run(args: argparse.Namespace) -> int:
    """Run the planned cases and report on them; return the exit status."""
    started = time.monotonic()
    agents = plan_agents(args.client + (HTTP2_SUFFIX if args.http2 else ""), args.full)
    patterns = args.cases or (["*"] if args.full else DEFAULT_CASES)
    reports_dir = HTTP2_REPORTS_DIR if args.http2 else REPORTS_DIR
    install = ensure_installed(CACHE_DIR)
    shutil.rmtree(reports_dir, ignore_errors=True)
    with ExitStack() as servers:
        server = servers.enter_context(fuzzing_server(install, patterns, reports_dir, CACHE_DIR))
        if not server.cases:
            raise RunError(f"no case matches {','.join(patterns)}")
        print(f"fuzzingserver at {server.url} (log: {server.log}), {len(server.cases)} cases", flush=True)
        url = server.url
        if args.http2:
            url = servers.enter_context(nghttpx_front(server.url, CACHE_DIR))
            print(f"{nghttpx_version()} at {url} (h2c) in front of it (log: {CACHE_DIR / 'nghttpx.log'})", flush=True)
        testee = Testee(args.client, url, args.case_timeout, args.http2)
        count = testee.service(agents[0], "case-count").strip()
        if count != str(len(server.cases)):
            raise RunError(f"getCaseCount answered {count!r}, but the server announced {len(server.cases)} cases")
        planned, problems = run_cases(testee, agents, server.cases, args.max_hangs)
        testee.service(agents[0], "update-reports")
    results = load_results(reports_dir, planned, problems)
    seconds = time.monotonic() - started

    print(f"\n{summary_table(results)}\n")
    failures = failure_report(results)
    if failures:
        print(f"Cases that did not pass:\n\n{failures}\n")
    if args.markdown:
        args.markdown.write_text(markdown_summary(args, agents, results, seconds))
        print(f"Summary written to {args.markdown}")
    ok = passed(results)
    print(
        f"{len(results)} cases in {seconds:.0f}s: {'all passed' if ok else 'FAILED'}"
        f" (reports: {reports_dir / 'index.html'})"
    )
    return 0 if ok else 1


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so that the fuzzingserver is stopped on the way out."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the suite and map setup errors and Ctrl-C to exit statuses."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with exclusive_run(CACHE_DIR / "run.lock"):
            return run(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (InstallError, ServerError, RunError) as error:
        print(f"conformance: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
