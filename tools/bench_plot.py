"""Plot messages per second against message size (stream workload) from tools/bench.py's JSON.

python tools/bench_plot.py [docs/bench.json] [docs/bench.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the non-interactive backend

ROOT = Path(__file__).resolve().parent.parent
LABELS = {
    "websync": "websync",
    "websocket-client": "websocket-client (pure Python)",
    "websockets": "websockets.sync",
    "raw": "raw socket (no parsing)",
}


def plot(report: dict[str, Any], output: Path) -> None:
    """One line per client: stream throughput at every measured message size, log-log."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for client, points in report["series"].items():
        sizes, rates = zip(*points)
        axes.plot(
            sizes, rates, marker="o", label=LABELS.get(client, client), linestyle="--" if client == "raw" else "-"
        )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("message size (bytes)")
    axes.set_ylabel("messages per second (median)")
    axes.set_title(f"Streaming echo through picows, {report['reps']} interleaved repetitions")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=120)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "bench.json"
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else source.with_suffix(".png")
    plot(json.loads(source.read_text()), output)
    print(output)


if __name__ == "__main__":
    main()
