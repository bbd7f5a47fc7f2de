# Two commands for a fresh clone:
#   make render   # install, then render the dev stack offline and print its plan
#   make test     # install (Python deps + promtool), then run the whole test suite

VENV  ?= .venv
PY    := $(VENV)/bin/python
TOOLS ?= .venv-tools
STACK ?= dev
OUT   ?= build/render

.PHONY: install render render-all tools test mutation clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

render: install
	$(PY) -m components render --stack $(STACK) --out $(OUT)/$(STACK)

render-all: install
	$(PY) -m components render --all --out $(OUT) --quiet

# checkov pins many libraries of its own, parliament needs pkg_resources: they get a virtualenv of their own.
$(TOOLS)/.installed: requirements-tools.txt
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet -r requirements-tools.txt
	touch $@

tools: $(TOOLS)/.installed
	@scripts/install-tools.sh

test: install tools
	CHECKOV=$(TOOLS)/bin/checkov PARLIAMENT=$(TOOLS)/bin/parliament $(PY) -m pytest

# Not in CI: one-line bugs (scripts/mutation_run.py) against the fast part of the suite.
mutation: install
	$(PY) scripts/mutation_run.py --report build/mutation.json

clean:
	rm -rf $(OUT) .pytest_cache
