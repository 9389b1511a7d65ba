"""Every Python code block of README.md and docs/ runs as written, against a local echo server.

The rules, for whoever writes documentation:

- A fenced block whose info string is ``python`` runs in its own interpreter and must exit with
  status 0 within ``TIMEOUT`` seconds.
- URLs on an ``example.org`` host (reserved for documentation, RFC 2606), such as
  ``wss://echo.example.org/`` or ``wss://feed.example.org/prices``, are rewritten to
  ``ws://127.0.0.1:PORT/...``: the example echo server (examples/echo_server.py) that this test
  starts. Every other URL is left alone, so a block that needs one is a fragment.
- An HTML comment on the line before a block changes how it is checked (it does not show on
  GitHub, PyPI or the docs site):

  - ``<!-- doc-example: fragment (why) -->``: not runnable on its own (a settings file, a
    method, a server that is not there); it is only compiled.
  - ``<!-- doc-example: until-interrupted -->``: a server or a tree that runs until Ctrl-C
    (``port=8765`` becomes ``port=0``); it must still run after ``SETTLE`` seconds, and after a
    SIGINT it must exit with status 0 or by the signal (Python's default for Ctrl-C).

- README.md may not link or point to images by relative paths: it is also the PyPI page.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from peers.example_echo import ROOT, start_example_echo
from peers.spawn import Spawned

TIMEOUT = 30.0
SETTLE = 2.0
MARKER = re.compile(r"<!--\s*doc-example:\s*(fragment|until-interrupted)\b.*-->")
EXAMPLE_URL = re.compile(r"wss?://[A-Za-z0-9.-]*example\.org(?::\d+)?")
# Another engineer owns the content of docs/supervisors.md: its sketches (ping(), send_report) are
# compiled only until its blocks carry markers.
FRAGMENT_FILES = {"docs/supervisors.md"}


@dataclass(frozen=True)
class Block:
    path: str
    line: int
    kind: str  # "run", "fragment" or "until-interrupted"
    code: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def documents() -> list[Path]:
    docs = [p for p in sorted((ROOT / "docs").rglob("*.md")) if "_build" not in p.parts]
    return [ROOT / "README.md", *docs]


def python_blocks(path: Path) -> Iterator[Block]:
    relative = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    previous = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            info = line[3:].strip()
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            if info.split(" ")[0] == "python":
                marker = MARKER.search(previous)
                kind = marker.group(1) if marker else "run"
                if relative in FRAGMENT_FILES:
                    kind = "fragment"
                yield Block(relative, index + 1, kind, "\n".join(lines[index + 1 : end]) + "\n")
            index = end + 1
            previous = ""
            continue
        if line.strip():
            previous = line
        index += 1


BLOCKS = [block for path in documents() for block in python_blocks(path)]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawned]:
    server = start_example_echo(tmp_path_factory.mktemp("doc-examples") / "echo.log")
    yield server
    server.stop()


def localised(code: str, port: int) -> str:
    return EXAMPLE_URL.sub(f"ws://127.0.0.1:{port}", code)


def start(code: str, tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    # Run from an empty directory: an example sees the installed websync, as a user's script would.
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_python_block(block: Block, echo: Spawned, tmp_path: Path) -> None:
    if block.kind == "fragment":
        compile(block.code, str(block), "exec")
        return
    code = localised(block.code, echo.port)
    if block.kind == "until-interrupted":
        code = code.replace("port=8765", "port=0")
    process = start(code, tmp_path)
    try:
        if block.kind == "until-interrupted":
            time.sleep(SETTLE)
            assert process.poll() is None, f"{block} exited early:\n{process.communicate()[0]}"
            process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()
    allowed = (0, -signal.SIGINT) if block.kind == "until-interrupted" else (0,)
    assert process.returncode in allowed, f"{block} exited with {process.returncode}:\n{output}"


def test_every_document_has_its_blocks_found() -> None:
    assert any(block.path == "README.md" and block.kind == "run" for block in BLOCKS)
    assert len({block.path for block in BLOCKS}) >= 5


def test_readme_has_no_relative_links_or_images() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]*)\)", readme) + re.findall(r"<img[^>]*src=\"([^\"]*)\"", readme)
    relative = [target for target in targets if not re.match(r"https?://", target)]
    assert not relative, f"relative links break on PyPI: {relative}"
