# The two commands: `make run` and `make test`. Only a Python 3.11+ on PATH is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency's version, for installs that are the same everywhere (make, CI, the image): `make lock`.
LOCK := requirements.lock

.PHONY: run test lock lint bench-registration clean i18n

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Guichet needs Python 3.11 or newer")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/guichet db upgrade
	$(BIN)/guichet seed demo
	$(BIN)/guichet serve --host 127.0.0.1 --port 8000

# Two processes by default (the suite's databases are per process; a file's tests stay together and in order).
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Rewrites requirements.lock from pyproject.toml (runtime and test dependencies, every platform and Python
# 3.11+): versions already locked stay where they still fit, what was added is resolved.
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest versions. uv is installed into .venv for it.
lock:
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 --quiet \
		--custom-compile-command 'make lock' $(LOCK_ARGS) -o $(LOCK)

# The gettext catalogues (docs/i18n.md): extract the code's messages into app/locale/guichet.pot, merge
# them into km and fr, compile the .mo files (committed), then fail while a message lacks a translation.
i18n: $(STAMP)
	$(BIN)/python scripts/i18n.py all

clean:
	rm -rf $(VENV) var .pytest_cache
