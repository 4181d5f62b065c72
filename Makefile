# The project's front door: `make demo` and `make test` work on a fresh machine
# with only python3 (3.10+) and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip understands PEP 735 dependency groups (--group) from 25.1 on.
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_TIMEOUT ?= 60

.PHONY: help demo test lint typecheck pytest pytest-compiled test-all test-slow bench docs figures plots clean

help:
	@echo "make demo       run the demo (python -m drainpipe)"
	@echo "make test       lint, type-check and test on asyncio, uvloop and trio, on both cores"
	@echo "make test-all   the suite on the oldest and newest Python, and the lowest AnyIO"
	@echo "make test-slow  the heavy load and soak tests"
	@echo "make bench      the side-by-side benchmark suite"
	@echo "make docs       build the documentation (warnings are errors)"
	@echo "make figures    rewrite the documentation's figures from the committed JSON"
	@echo "make plots      run the benchmarks and the scale test, then make figures"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=25.1"

$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(PIP) install -e ".[trio,uvloop]"
	@touch $@

# PIN_ANYIO: an extra requirement such as anyio==4.16.0 (see test-all).
$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(PIP) install -e ".[trio]" --group test --group lint --group examples $(PIN_ANYIO)
	@touch $@

$(VENV)/.docs: $(VENV)/.dev
	$(PIP) install -e ".[trio]" --group docs --group examples
	@touch $@

$(VENV)/.plots: $(VENV)/.dev
	$(PIP) install -e ".[trio]" --group plots
	@touch $@

demo: $(VENV)/.demo
	$(BIN)/python -m drainpipe

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The docs scripts that need no matplotlib (the plots group) are checked too.
DOCS_TYPED := docs/figures.py docs/differential_table.py docs/overhead.py docs/checkpoint_cost.py docs/porting_echo.py
typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict src tests examples $(DOCS_TYPED)

# DRAINPIPE_CORE tells tests/test_build.py which core this run must be testing.
pytest: $(VENV)/.dev
	rm -f .coverage .coverage.*
	DRAINPIPE_CORE=python $(BIN)/python -m coverage run -m pytest -m "not slow" \
	  $(PYTEST_ARGS)
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report

# The suite again against a wheel built as users get it, its core compiled by mypyc
# (hatch_build.py), in a venv of its own. Where there is no C compiler the wheel is
# pure Python, and this run is skipped with a message; where there is one, the core
# must have compiled. The wheel is built from a copy of the tree: hatch-mypyc
# compiles in place and hides pyproject.toml meanwhile.
COMPILED_VENV := .venv-compiled
WHEEL_SRC := build/wheel-src
CPIP := $(COMPILED_VENV)/bin/python -m pip --disable-pip-version-check -q
$(COMPILED_VENV)/.wheel: pyproject.toml hatch_build.py $(shell find src -name '*.py')
	$(MAKE) --no-print-directory VENV=$(COMPILED_VENV) $(COMPILED_VENV)/bin/python
	rm -rf $(WHEEL_SRC) build/wheels
	mkdir -p $(WHEEL_SRC)
	cp -R pyproject.toml hatch_build.py README.md LICENSE src $(WHEEL_SRC)/
	find $(WHEEL_SRC) -name __pycache__ -prune -exec rm -rf {} +
	if command -v "$${CC:-cc}" >/dev/null; then export DRAINPIPE_REQUIRE_COMPILED=1; fi; \
	  $(CPIP) wheel --no-deps -w build/wheels ./$(WHEEL_SRC)
	$(CPIP) install "$$(ls build/wheels/drainpipe-*.whl)[trio]" \
	  --group test --group examples
	$(CPIP) install --force-reinstall --no-deps build/wheels/drainpipe-*.whl
	@touch $@

pytest-compiled: $(COMPILED_VENV)/.wheel
	@if $(COMPILED_VENV)/bin/python -c \
	    "import drainpipe._core as c; raise SystemExit(not c.COMPILED)"; then \
	  echo "== the suite on the compiled core"; \
	  DRAINPIPE_CORE=compiled $(COMPILED_VENV)/bin/python -m pytest -m "not slow" \
	    $(PYTEST_ARGS); \
	elif command -v "$${CC:-cc}" >/dev/null; then \
	  echo "the core did not compile, yet there is a C compiler"; exit 1; \
	else \
	  echo "== no C compiler: the wheel is pure Python, its run is skipped"; \
	fi

test: lint typecheck pytest pytest-compiled

# The suite on the oldest and newest Pythons present, each in its own venv, then
# on the lowest AnyIO that pyproject.toml allows. An interpreter is looked for on
# PATH, then in pyenv's and the system's folders; one that is not installed is
# skipped with a message.
TEST_ALL_VERSIONS ?= 3.10 3.13
ANYIO_LOWEST := $(shell sed -n 's/^dependencies = \["anyio>=\([0-9.]*\),.*/\1/p' pyproject.toml)
test-all:
	@echo "== AnyIO $(ANYIO_LOWEST), the lowest supported"
	$(MAKE) --no-print-directory VENV=.venv-anyio-$(ANYIO_LOWEST) \
	  PIN_ANYIO="anyio==$(ANYIO_LOWEST)" pytest
	@for v in $(TEST_ALL_VERSIONS); do \
	  py=""; \
	  for c in python$$v $$HOME/.pyenv/versions/$$v*/bin/python$$v \
	           /usr/local/bin/python$$v /usr/bin/python$$v; do \
	    if "$$c" -c "" >/dev/null 2>&1; then py=$$c; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then echo "== Python $$v not found, skipped"; continue; fi; \
	  echo "== Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory PYTHON=$$py VENV=.venv-$$v pytest || exit 1; \
	done

test-slow: $(VENV)/.dev
	$(BIN)/python -m pytest -m slow -p no:randomly $(PYTEST_ARGS)

# What users get is measured: the wheel whose core compiled (pure Python where no
# C compiler is found; every run's JSON says which core ran).
PERF := $(COMPILED_VENV)/bin/python
bench: $(COMPILED_VENV)/.wheel
	$(PERF) -m drainpipe bench $(BENCH_ARGS)

docs: $(VENV)/.docs
	$(BIN)/python -m sphinx -W --keep-going -n -b html docs docs/_build/html

# Every number on the documentation's pages and in the README is rendered by
# docs/figures.py (the differential suite's table by docs/differential_table.py)
# from the JSON under docs/_static; tests/test_docs_figures.py fails when the
# committed text and the JSON disagree.
# `make figures`: count the tests again and rewrite the text from the JSON.
figures: $(VENV)/.dev
	$(BIN)/python docs/figures.py count-tests
	$(BIN)/python docs/differential_table.py docs/_static/differential.json

# `make plots`: new runs (commit the JSON, the PNGs and the text made from them).
# The measurements run on the compiled core (PERF); bench_python.json is scenario 1
# again on the pure-Python core of the editable install. bench.json is a full run:
# a --quick round of scenario 1 is too short to hold still on a shared machine,
# whose noise can then move a share of the ceiling across the goal.
plots: $(VENV)/.plots $(COMPILED_VENV)/.wheel
	$(BIN)/python docs/backpressure_plot.py
	$(BIN)/python docs/timeline_plot.py
	$(PERF) -m drainpipe bench --json docs/_static/bench.json
	$(BIN)/python docs/bench_plot.py docs/_static/bench.json
	$(BIN)/python -m drainpipe bench --quick --scenarios small \
	  --json docs/_static/bench_python.json
	$(PERF) -m drainpipe bench --quick --scenarios idle --json docs/_static/idle.json
	$(PERF) docs/overhead.py --json docs/_static/overhead.json
	$(PERF) docs/checkpoint_cost.py --json docs/_static/checkpoint_cost.json
	rm -f docs/_static/differential.json
	DRAINPIPE_DIFFERENTIAL_REPORT=docs/_static/differential.json \
	  $(BIN)/python -m pytest -p no:randomly tests/test_differential.py \
	  --deselect tests/test_differential.py::test_the_porting_page_shows_this_suite
	rm -f docs/_static/scale.json
	DRAINPIPE_SCALE_REPORT=docs/_static/scale.json \
	  $(BIN)/python -m pytest -m slow -p no:randomly tests/test_scale.py
	$(MAKE) --no-print-directory figures

clean:
	rm -rf $(VENV) .venv-* .coverage .coverage.* docs/_build .mypy_cache .ruff_cache
