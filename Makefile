# The two commands of the README: `make book` (set-up + build the site) and `make test`
# (set-up + every test). Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pins torch to the CPU wheel that CI machines carry; `make test CONSTRAINTS=` drops the pin.
CONSTRAINTS ?= .ci/constraints.txt

.PHONY: setup book test unit clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[book,test]'
	touch $@

book: setup
	$(BIN)/jupyter-book build -W --keep-going book

test: book
	$(BIN)/python -m pytest tests --nbval-lax notebooks

unit: setup  # the fast tests: no site build, no notebooks
	$(BIN)/python -m pytest tests --ignore=tests/test_site.py

clean:
	rm -rf book/_build
