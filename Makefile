# Two commands on a fresh machine with Python 3.11+:
#   make demo   create .venv, install, build the demo project, open the dashboard
#   make test   create .venv, install, run the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= data/demo.db

.PHONY: install browser demo test lint clean

$(STAMP): requirements.txt requirements-dev.txt requirements-embeddings.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

install: $(STAMP)

$(DEMO_DB): | $(STAMP)
	$(BIN)/screening demo $(DEMO_DB)

demo: $(STAMP) $(DEMO_DB)
	$(BIN)/streamlit run app.py -- --db $(DEMO_DB)

# The end-to-end dashboard test drives Debian's Chromium through Playwright's own driver
# (no browser download): install it when missing, as root or through sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check screening tests benchmarks app.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
