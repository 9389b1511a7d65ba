"""The layout's rules that import-linter cannot state: websync names only what ``supervisors`` exports."""

from __future__ import annotations

import ast
from pathlib import Path

import supervisors

WEBSYNC = Path(__file__).resolve().parents[1] / "websync"


def test_websync_imports_only_supervisors_public_names() -> None:
    public = {*supervisors.__all__, "sys", "__version__"}
    used: dict[str, list[str]] = {}
    for path in WEBSYNC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None and node.module.startswith("supervisors"):
                assert node.module in ("supervisors", "supervisors.sys"), f"{path}: imports {node.module}"
                if node.module == "supervisors":
                    for alias in node.names:
                        used.setdefault(alias.name, []).append(path.name)
    assert set(used) <= public, {name: files for name, files in used.items() if name not in public}
