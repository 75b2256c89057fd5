# The two commands a new user needs: `make demo` and `make test`. Both install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean bench histories

$(STAMP): pyproject.toml setup.py
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
	$(MAKE) typecheck

# mypy over the installed namespace: gameday.<folder> are links to the repository's folders (setup.py maps them
# the same way), so every `from gameday.x import y` is checked, none silently missing.
FOLDERS := workflows activities worker cli demo model report config console
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/gameday
	for folder in $(FOLDERS); do [ ! -d $$folder ] || ln -s ../../../$$folder build/typecheck/gameday/$$folder; done
	MYPYPATH=build/typecheck $(BIN)/mypy -p gameday

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build/typecheck
