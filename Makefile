# Loa — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) deploy/make_venv.py $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/loa demo

# Most tests wait on real processes, sockets and clocks, so three workers share two cores well
# (a test file stays on one worker: its module fixtures start once). Then the domain and web
# tests again on a real PostgreSQL server.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --db postgresql tests/broadcast tests/web

# Only the PostgreSQL pass (Debian's postgresql package).
test-postgres: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --db postgresql tests/broadcast tests/web

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
