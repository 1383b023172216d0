# Two commands on a fresh machine: `make demo` and `make test`. Only Python 3.11+ and make needed.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser-deps demo test up lint format bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "OrderPulse needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependencies or the lock change.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/orderpulse demo

# The browser test drives Debian's chromium, and Chinese text needs a CJK font (screenshots and
# chart images alike). Installed when missing and apt-get is usable as root; never fails `make
# test`: without them the browser test skips and says why.
CHROMIUM ?= /usr/bin/chromium
BROWSER_DEPS_LOG := /tmp/orderpulse-browser-deps.log
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o DPkg::Lock::Timeout=300 chromium fonts-noto-cjk

browser-deps:
	@if [ -x $(CHROMIUM) ] && fc-list :lang=zh family 2>/dev/null | grep -q .; then \
		exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ]; then \
		echo "browser-deps: chromium or a CJK font is missing and apt-get (as root) is not" \
			"available: the browser test will skip"; exit 0; fi; \
	echo "browser-deps: installing chromium and fonts-noto-cjk (log: $(BROWSER_DEPS_LOG))"; \
	{ $(APT_INSTALL) || { apt-get update -qq && $(APT_INSTALL); }; } >$(BROWSER_DEPS_LOG) 2>&1 \
		|| echo "browser-deps: apt-get failed (see $(BROWSER_DEPS_LOG)): the browser test will skip"
	@# matplotlib lists the system's fonts once and never looks again: a list made before the
	@# CJK font came keeps chart labels as boxes, so drop it (rebuilt on the next import)
	@if fc-list :lang=zh family 2>/dev/null | grep -q .; then \
		for list in $${MPLCONFIGDIR:-$$HOME/.cache/matplotlib}/fontlist-*.json; do \
			[ -f "$$list" ] && ! grep -q "CJK" "$$list" && rm -f "$$list"; done; fi; true

test: install browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --dist loadfile

up: install
	$(BIN)/orderpulse up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

# Refresh the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^orderpulse' > constraints.txt

clean:
	-$(BIN)/orderpulse db stop
	rm -rf $(VENV) .orderpulse dbt_project/target
