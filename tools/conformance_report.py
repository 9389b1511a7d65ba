"""Read the fuzzingserver's JSON reports and summarise them per case category."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Summary columns, and the same verdicts from best to worst.
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")
SEVERITY = ("OK", "INFORMATIONAL", "NON-STRICT", "UNIMPLEMENTED", "FAILED")
PASSING = frozenset({"OK", "INFORMATIONAL"})
MISSING = "MISSING"
CATEGORIES = {
    1: "Framing",
    2: "Pings/Pongs",
    3: "Reserved Bits",
    4: "Opcodes",
    5: "Fragmentation",
    6: "UTF-8 Handling",
    7: "Close Handling",
    9: "Limits/Performance",
    10: "Miscellaneous",
    12: "Compression (payloads)",
    13: "Compression (parameters)",
}
DETAIL_CHARS = 300


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key for case ids such as ``"6.4.1"``."""
    return tuple(int(part) for part in case_id.split("."))


def _column(behavior: str) -> str:
    """Map an Autobahn behavior to a summary column (WRONG CODE, UNCLEAN, ... are failures)."""
    return behavior if behavior in VERDICTS else "FAILED"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case for one agent."""

    agent: str
    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int
    report_file: Path | None
    problem: str | None = None

    @property
    def category(self) -> int:
        """The case's category, the first number of its id."""
        return case_key(self.case_id)[0]

    @property
    def verdict(self) -> str:
        """The worse of ``behavior`` and ``behaviorClose``; FAILED if the testee misbehaved."""
        if self.problem is not None:
            return "FAILED"
        return max(_column(self.behavior), _column(self.behavior_close), key=SEVERITY.index)

    def details(self) -> list[str]:
        """Why the case did not pass: the testee problem and the server's findings."""
        lines = [f"testee: {self.problem}"] if self.problem else []
        if self.report_file is None:
            lines.append("the server recorded no result for this case")
            return lines
        report = json.loads(self.report_file.read_text())
        lines.append(f"behavior {report['behavior']}: {report['result']}")
        lines.append(f"close {report['behaviorClose']}: {report['resultClose']}")
        if _column(report["behavior"]) not in PASSING:
            lines.append(f"expected: {_shorten(report['expected'])}")
            lines.append(f"received: {_shorten(report['received'])}")
        if _column(report["behaviorClose"]) not in PASSING:
            lines.append(f"expected close: {_shorten(report['expectedClose'])}")
            reason = report.get("remoteCloseReason")
            lines.append(
                f"close codes: the testsuite sent {report.get('localCloseCode')}, the testee sent "
                f"{report.get('remoteCloseCode')}" + (f" ({reason!r})" if reason else "")
            )
        return lines


def _shorten(value: object) -> str:
    """Compact JSON of a report field, cut to a readable length."""
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "..."


def load_results(outdir: Path, planned: dict[str, list[str]], problems: dict[tuple[str, str], str]) -> list[CaseResult]:
    """Results of every planned case of every agent, from ``outdir/index.json``.

    ``planned`` maps each agent to the case ids it was meant to run; a case
    the server did not record counts as MISSING. ``problems`` maps
    ``(agent, case_id)`` to what went wrong on the testee's side.
    """
    index_file = outdir / "index.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else {}
    results = []
    for agent, case_ids in planned.items():
        recorded = index.get(agent, {})
        for case_id in sorted(case_ids, key=case_key):
            problem = problems.get((agent, case_id))
            entry = recorded.get(case_id)
            if entry is None:
                results.append(CaseResult(agent, case_id, MISSING, MISSING, 0, None, problem))
            else:
                results.append(
                    CaseResult(
                        agent,
                        case_id,
                        entry["behavior"],
                        entry["behaviorClose"],
                        int(entry["duration"]),
                        outdir / entry["reportfile"],
                        problem,
                    )
                )
    return results


def passed(results: Iterable[CaseResult]) -> bool:
    """True if every case is OK or INFORMATIONAL."""
    return all(result.verdict in PASSING for result in results)


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Lay out a table as aligned plain text or as a Markdown table."""
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines)


def summary_table(results: list[CaseResult], markdown: bool = False) -> str:
    """Count the verdicts per category and agent, with a total row per agent."""
    agents = list(dict.fromkeys(result.agent for result in results))
    header = ["Category", "Agent", *VERDICTS, "Time (s)"]
    rows = []

    def add_row(label: str, agent: str, selected: list[CaseResult]) -> None:
        tally = Counter(result.verdict for result in selected)
        seconds = sum(result.duration_ms for result in selected) / 1000
        rows.append([label, agent, *(str(tally[verdict]) for verdict in VERDICTS), f"{seconds:.1f}"])

    for category in sorted({result.category for result in results}):
        label = f"{category} {CATEGORIES.get(category, '')}".strip()
        for agent in agents:
            selected = [r for r in results if r.category == category and r.agent == agent]
            if selected:
                add_row(label, agent, selected)
    for agent in agents:
        add_row("All", agent, [r for r in results if r.agent == agent])
    return _render(header, rows, markdown)


def failure_report(results: list[CaseResult], markdown: bool = False) -> str:
    """Describe every case that is not OK or INFORMATIONAL, one block per case."""
    blocks = []
    for result in results:
        if result.verdict in PASSING:
            continue
        title = f"{result.agent} {result.case_id}: {result.behavior} / close {result.behavior_close}"
        lines = result.details()
        if markdown:
            body = "\n".join(f"  {line}" for line in lines)
            blocks.append(f"- **{title}**\n\n  ```text\n{body}\n  ```")
        else:
            blocks.append("\n".join([title, *(f"    {line}" for line in lines)]))
    return "\n\n".join(blocks)
