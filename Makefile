# The two commands a new user needs: `make demo` and `make test`. Both install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench histories

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
	$(BIN)/mypy workflows activities worker cli model

test: $(STAMP) lint
	$(BIN)/pytest -q

# Re-record tests/histories/ from the tests (after a workflow change; the replay test asks for it).
histories: $(STAMP)
	rm -f tests/histories/*.json
	GAMEDAY_RECORD_HISTORIES=1 $(BIN)/pytest -q -p no:cacheprovider tests/workflows tests/activities tests/cli
	$(BIN)/python -m tests.histories_fingerprint --write

bench: $(STAMP)
	$(BIN)/python bench/orchestration_overhead.py
	$(BIN)/python bench/proxy_latency.py; $(BIN)/python bench/proxy_overhead.py; $(BIN)/python bench/docker_faults.py
	$(BIN)/python bench/stop_latency.py; $(BIN)/python bench/guardrail_reaction.py; $(BIN)/python bench/crash_survival.py
	$(BIN)/python bench/observe_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
