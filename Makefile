# Every target installs what it needs into .venv first, so a fresh clone needs only `make <target>`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test conformance demo venv peers clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

# Real peers the tests run (Debian and npm packages); each script is idempotent and skips what it cannot install.
peers:
	for script in tests/peers/install_*.sh; do bash "$$script"; done

test: $(STAMP) peers
	$(PY) -m pytest $(PYTEST_ARGS)
	# the pure-Python masking path, which installs without a compiler use
	WEBSYNC_PURE_PYTHON=1 $(PY) -m pytest -q tests/test_frames.py tests/test_protocol.py tests/test_server.py

conformance: $(STAMP)
	$(PY) tools/conformance.py $(if $(FULL),--full,)
	$(PY) tools/conformance_server.py $(if $(FULL),--full,)

demo: $(STAMP)
	$(PY) -m examples.demo

clean:
	rm -rf $(VENV) .autobahn reports
