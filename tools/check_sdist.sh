#!/usr/bin/env bash
# The sdist tests itself: unpack dist/websync-*.tar.gz in a temporary directory, install it (with
# the test extra) into a fresh venv, and have pytest collect the unpacked test suite: any
# collection error (a missing conftest, helper or peer file) fails. A full run is `make test`'s job.
# Usage: tools/check_sdist.sh   (after `make dist`; PYTHON: the interpreter for the venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
sdist=$(ls "$PWD"/dist/websync-*.tar.gz)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xzf "$sdist" -C "$work"
tree=$(ls -d "$work"/websync-*/)
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "websync[test] @ file://$sdist"
cd "$tree"
# The console script, not `python -m pytest`: the unpacked websync/ must not shadow the installed one.
"$work/venv/bin/pytest" -p no:cacheprovider --collect-only -q >"$work/collect.log" 2>&1 || status=$?
tail -n 3 "$work/collect.log"
if [ "${status:-0}" -ne 0 ] || grep -qiE "^(ERROR|E )|errors? during collection" "$work/collect.log"; then
    cat "$work/collect.log" >&2
    echo "check_sdist: pytest could not collect the sdist's test suite" >&2
    exit 1
fi
echo "check_sdist: the sdist's test suite collects (installed from $(basename "$sdist"))"
