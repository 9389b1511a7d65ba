# Every target installs what it needs into .venv first, so a fresh clone needs only `make <target>`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-pythons lint conformance conformance-h2 bench demo venv peers dist check-sdist docs clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test,lint]'
	touch $(STAMP)

# Real peers the tests run (Debian and npm packages); each script is idempotent and skips what it cannot install.
peers:
	for script in tests/peers/install_*.sh; do bash "$$script"; done

test: $(STAMP) peers
	$(PY) -m pytest $(PYTEST_ARGS)
	# the pure-Python masking path, which installs without a compiler use
	WEBSYNC_PURE_PYTHON=1 $(PY) -m pytest -q tests/core/test_frames.py tests/core/test_protocol.py tests/server/test_server.py

# The suite under the other supported Pythons (3.12, 3.13) against the wheels of `make dist` (run it first),
# installed each in its own venv; Pythons not installed are skipped.
test-pythons: peers
	tools/test_pythons.sh

# Static checks, pinned: ruff's lint and format, mypy --strict (tests: bodies checked, fixtures unannotated),
# and the import rules between the layers (import-linter; the contracts are in setup.cfg).
LINTED := websync supervisors tools tests examples docs/conf.py docs/_ext setup.py
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

# What a release uploads, in dist/: the sdist, a manylinux wheel with the C accelerator for each of
# CPython 3.11, 3.12 and 3.13 found (auditwheel repair on this host), a py3-none-any wheel; twine check.
DIST_STAMP := $(VENV)/.installed-dist
$(DIST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test,lint,dist]'
	touch $(DIST_STAMP)

dist: $(DIST_STAMP)
	PYTHON=$(PY) tools/build_dist.sh

# The sdist tests itself (after make dist): unpacked and installed in a fresh venv, pytest collects its suite.
check-sdist: $(STAMP)
	PYTHON=$(PYTHON) tools/check_sdist.sh

# The documentation site (Sphinx + MyST), warnings as errors, into docs/_build/html. Not nitpicky (-n):
# type hints name stdlib and internal classes that only intersphinx, which needs the network, resolves.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test,lint,docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

conformance: $(STAMP) peers
	$(PY) tools/conformance.py $(if $(FULL),--full,)
	$(PY) tools/conformance_server.py $(if $(FULL),--full,)
	$(PY) tools/conformance.py --http2 $(if $(FULL),--full,)

# Autobahn's client cases over HTTP/2: nghttpx (RFC 8441) in front of the fuzzingserver.
conformance-h2: $(STAMP) peers
	$(PY) tools/conformance.py --http2 $(if $(FULL),--full,)

# Side-by-side speed and memory against websocket-client and websockets (docs/performance.md).
bench: $(STAMP)
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test,bench]'
	$(PY) tools/bench.py $(if $(REPS),--reps $(REPS),) --json docs/bench.json
	$(PY) tools/bench_plot.py docs/bench.json docs/bench.png
	$(PY) tools/bench_layers.py $(if $(REPS),--reps $(REPS),)

# 1,000 connections side by side with websockets (asyncio) and picows, connect storms, 10,000 idle workers (docs/load.md).
.PHONY: bench-load
bench-load: $(STAMP)
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test,bench]'
	$(PY) tools/bench_load.py $(if $(REPS),--reps $(REPS),) --json docs/load.json

demo: $(STAMP)
	$(PY) -m examples.demo

clean:
	rm -rf $(VENV) .autobahn reports build dist docs/_build
