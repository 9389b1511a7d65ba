#!/usr/bin/env bash
# Run the test suite under each of the other supported Pythons (default: 3.12 and 3.13), each in
# its own venv (.venv-3.12, ...) with the C accelerator built for it, reinstalled when setup.cfg or
# pyproject.toml changed. An interpreter is looked up on PATH, then among pyenv's versions; one that
# is not installed is reported and skipped.
# Usage: tools/test_pythons.sh [VERSION...]   (pytest arguments through PYTEST_ARGS)
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local version=$1 candidate
    if candidate=$(command -v "python$version") && "$candidate" -c "" 2>/dev/null; then
        echo "$candidate"
    elif command -v pyenv >/dev/null; then
        ls -d "$(pyenv root)/versions/$version".*/bin/python 2>/dev/null | sort -V | tail -n 1
    fi
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.12 3.13)
for version in "${versions[@]}"; do
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version not installed: skipped"
        continue
    fi
    venv=".venv-$version"
    if [ ! "$venv/.installed" -nt setup.cfg ] || [ ! "$venv/.installed" -nt pyproject.toml ]; then
        "$python" -m venv "$venv"
        "$venv/bin/pip" install --quiet --config-settings editable_mode=compat -e '.[test]'
        touch "$venv/.installed"
    fi
    echo "== Python $version ($python)"
    # shellcheck disable=SC2086 # PYTEST_ARGS holds several arguments
    "$venv/bin/python" -m pytest -q ${PYTEST_ARGS:-}
done
