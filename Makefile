# The two commands a new user needs: `make demo` and `make test`. Both install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gameday demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy workflows activities worker cli

test: $(STAMP) lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/orchestration_overhead.py
	$(BIN)/python bench/proxy_latency.py; $(BIN)/python bench/proxy_overhead.py; $(BIN)/python bench/docker_faults.py
	$(BIN)/python bench/stop_latency.py; $(BIN)/python bench/guardrail_reaction.py; $(BIN)/python bench/crash_survival.py
	$(BIN)/python bench/observe_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
