#!/usr/bin/env bash
# Run the test suite under each of the other supported Pythons (default: 3.12 and 3.13) against
# the wheel `make dist` built for it, not the source tree: each Python gets its own venv
# (.venv-3.12, ...) with the test extra, the wheel from dist/ is (re)installed into it, and pytest
# runs from a copy of tests/, examples/ and the docs in a temporary directory, where the source websync/ is
# not importable (the run checks that websync comes from site-packages, with its C accelerator).
# An interpreter is looked up on PATH, then among pyenv's versions; one that is not installed is
# reported and skipped; one without its wheel in dist/ is an error.
# Usage: tools/test_pythons.sh [VERSION...]   (pytest arguments through PYTEST_ARGS)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/pythons.sh
source tools/pythons.sh

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
# setup.cfg for pytest's settings; tests/ with the Node peer's node_modules, which `make peers` installed;
# README.md and docs/ for the test that runs their code blocks.
cp -r tests examples docs README.md setup.cfg "$run_dir"
find "$run_dir" -name __pycache__ -prune -exec rm -rf {} +

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.12 3.13)
for version in "${versions[@]}"; do
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version not installed: skipped"
        continue
    fi
    tag="cp${version/./}"
    wheel=$(ls dist/websync-*-"$tag"-"$tag"-manylinux*.whl 2>/dev/null | head -n 1)
    if [ -z "$wheel" ]; then
        echo "== Python $version: no $tag wheel in dist/: run make dist first" >&2
        exit 1
    fi
    venv="$PWD/.venv-$version"
    if [ ! "$venv/.installed" -nt setup.cfg ] || [ ! "$venv/.installed" -nt pyproject.toml ]; then
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install --quiet "websync[test] @ file://$PWD/$wheel"
        touch "$venv/.installed"
    fi
    "$venv/bin/pip" install --quiet --no-deps --force-reinstall "$wheel"
    echo "== Python $version ($python), $(basename "$wheel")"
    (
        cd "$run_dir"
        "$venv/bin/python" - <<'PY'
import sysconfig
import websync
from websync.core import _speedups  # the wheel's C accelerator

site = sysconfig.get_paths()["purelib"]
assert websync.__file__.startswith(site), f"websync imported from {websync.__file__}, not from {site}"
print(f"websync {websync.__version__} from {websync.__file__}, accelerator {_speedups.__file__}")
PY
        # shellcheck disable=SC2086 # PYTEST_ARGS holds several arguments
        # The slow load and timing runs ran once already, in make test: CI stays within its budget.
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" ${PYTEST_ARGS:-}
    )
done
