# The two commands of the README: `make book` (set-up + build the site) and `make test`
# (set-up + every test). Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pins torch to the CPU wheel that CI machines carry; `make test CONSTRAINTS=` drops the pin.
CONSTRAINTS ?= .ci/constraints.txt

.PHONY: setup book test test-slow unit colab-check clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[book,test]'
	touch $@

# jupyter-book reads executed chapters from this cache (execute_notebooks: cache); both targets empty it first,
# so every chapter runs against the package as it is now.
CACHE := book/_build/.jupyter_cache

book: setup
	rm -rf $(CACHE)
	$(BIN)/jupyter-book build -W --keep-going book

# Each chapter executes once: nbval runs it (the notebook test) and tests/nbcache.py hands its outputs to the build.
test: setup
	rm -rf $(CACHE)
	$(BIN)/python -m pytest -p tests.nbcache --nb-cache $(CACHE) --nbval-lax notebooks
	$(BIN)/jupyter-book build -W --keep-going book
	$(BIN)/python -m pytest tests

unit: setup  # the fast tests: no site build, no notebooks
	$(BIN)/python -m pytest tests --ignore=tests/test_site.py

test-slow: setup  # every chapter at its GPU size on this machine (about an hour on two cores; not in CI)
	$(BIN)/python -m pytest -m slow tests/test_gpu_sizes.py

colab-check:  # every chapter as a script, from a wheel in a clean virtualenv, outside the repository (not in CI)
	CONSTRAINTS=$(CONSTRAINTS) .ci/colab-check

clean:
	rm -rf book/_build
