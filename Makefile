# The README's two commands: `make train` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := runs/lenet5-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup browser train test lint

# torch is pinned through constraints.txt to the local CPU build (see constraints.txt)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,explore,export]'
	touch $(STAMP)

setup: $(STAMP)

# fetch + verify real MNIST, train LeNet-5, report test accuracy
train: setup
	$(BIN)/cnnlab data fetch mnist
	$(BIN)/cnnlab train lenet5 --data mnist --out $(RUN)

# The page test (tests/explore/test_explore_browser.py) drives Debian's chromium through
# playwright; browsers are never downloaded (no `playwright install`). Installed when root
# with apt-get; otherwise one line says so and that test is skipped.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null) || echo "chromium could not be installed: the page test will be skipped"; \
	else echo "no $(CHROMIUM) (as root: apt-get install chromium): the page test will be skipped"; fi

# Two pytest-xdist workers (the CI machine's 2 cores), one thread each (tests/conftest.py).
# Modules with costly module fixtures are marked xdist_group to share one worker (their
# fixtures are built once); every other test goes to whichever worker is free. pytest-xdist 3.8
# no longer applies these marks on pytest 9.2 (pytest-xdist#1386): tests/conftest.py does.
test: setup browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
