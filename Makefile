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

test: $(STAMP)
	$(BIN)/python -m pytest

# The domain and web tests again on a real PostgreSQL server (Debian's postgresql package).
test-postgres: $(STAMP)
	$(BIN)/python -m pytest --db postgresql tests/broadcast tests/web

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
