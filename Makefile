# The README's two commands: `make train` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := runs/lenet5-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup train test lint

# torch is pinned through constraints.txt to the local CPU build (see constraints.txt)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,export]'
	touch $(STAMP)

setup: $(STAMP)

# fetch + verify real MNIST, train LeNet-5, report test accuracy
train: setup
	$(BIN)/cnnlab data fetch mnist
	$(BIN)/cnnlab train lenet5 --data mnist --out $(RUN)

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
