"""Run the Autobahn testsuite's fuzzingclient against the websync server (``make conformance``).

Starts two websync echo servers on 127.0.0.1 in this process, one accepting permessage-deflate
(agent ``websync-server``) and one declining it (``websync-server-nocompress``, which skips the
compression cases 12.* and 13.*), runs the fuzzingclient against both, reads the reports from
reports/servers/ and exits 1 unless every case is OK or INFORMATIONAL in both its behavior and
its closing. Installing the testsuite and reading its reports is shared with
tools/conformance.py (the client side).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from autobahn_install import InstallError, ensure_installed
from autobahn_server import _announced_cases, wstest_command
from conformance import CACHE_DIR, COMPRESSION_CATEGORIES, DEFAULT_CASES, ROOT
from conformance_report import (
    case_key,
    failure_report,
    load_results,
    passed,
    summary_table,
)

sys.path.insert(0, str(ROOT))  # the websync of this work tree, whatever the venv has installed

import websync
from websync import Binary, ServerHandler, Text

REPORTS_DIR = ROOT / "reports" / "servers"
AGENT = "websync-server"
NO_COMPRESSION_AGENT = f"{AGENT}-nocompress"
MAX_SIZE = 2**25  # cases 9.1.6 and 9.2.6 send 16 MiB messages
STOP_TIMEOUT = 30.0  # a bounded stop: the verdicts are in the reports whatever happens at exit
ALL_CASES = [f"{category}.*" for category in range(1, 14) if category not in (8, 11)]


class Echo(ServerHandler):
    """The testee: every message goes back as it came."""

    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        return frame


def run_fuzzing_client(spec: dict[str, object], timeout: float) -> tuple[list[str], Path]:
    """Run the fuzzingclient with ``spec``; return the case ids it announced and its log."""
    install = ensure_installed(CACHE_DIR)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    spec_file = CACHE_DIR / "fuzzingclient.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    log = CACHE_DIR / "fuzzingclient.log"
    command = wstest_command(install, "fuzzingclient", spec_file)
    with log.open("wb") as output:
        try:
            subprocess.run(
                command,
                cwd=CACHE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"fuzzingclient did not finish within {timeout:.0f}s (log: {log})", flush=True)
    return _announced_cases(log) or [], log


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run every case 1.* to 13.* (default: a quick subset)")
    parser.add_argument(
        "--cases",
        metavar="PATTERNS",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        help="comma-separated case ids or patterns to run instead, e.g. '6.*,7.1.1'",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS", help="bound on the whole run")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Serve, fuzz, report; return the exit status."""
    started = time.monotonic()
    patterns = args.cases or (ALL_CASES if args.full else DEFAULT_CASES)
    shutil.rmtree(REPORTS_DIR, ignore_errors=True)
    with ExitStack() as stack:
        servers = {
            agent: websync.serve(Echo, compression=compression, max_size=MAX_SIZE, close_timeout=5)
            for agent, compression in ((AGENT, "deflate"), (NO_COMPRESSION_AGENT, None))
        }
        for server in servers.values():
            stack.callback(server.stop, STOP_TIMEOUT)
        spec = {
            "outdir": str(REPORTS_DIR),
            "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{server.port}"} for agent, server in servers.items()],
            "cases": patterns,
            "exclude-cases": [],
            "exclude-agent-cases": {
                NO_COMPRESSION_AGENT: [f"{category}.*" for category in sorted(COMPRESSION_CATEGORIES)]
            },
        }
        cases, log = run_fuzzing_client(spec, args.timeout)
    if not cases:
        print(f"conformance_server: the fuzzingclient ran no case; see {log}", file=sys.stderr)
        return 2
    planned = {
        AGENT: cases,
        NO_COMPRESSION_AGENT: [case for case in cases if case_key(case)[0] not in COMPRESSION_CATEGORIES],
    }
    results = load_results(REPORTS_DIR, planned, {})
    seconds = time.monotonic() - started
    print(f"\n{summary_table(results)}\n")
    failures = failure_report(results)
    if failures:
        print(f"Cases that did not pass:\n\n{failures}\n")
    ok = passed(results)
    print(
        f"{len(results)} cases in {seconds:.0f}s: {'all passed' if ok else 'FAILED'} (reports: {REPORTS_DIR / 'index.html'})"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: map setup errors and Ctrl-C to exit statuses."""
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except InstallError as error:
        print(f"conformance_server: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
