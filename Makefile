# Two commands for a fresh clone:
#   make render   # install, then render the dev stack offline and print its plan
#   make test     # install (Python deps + promtool), then run the whole test suite

VENV  ?= .venv
PY    := $(VENV)/bin/python
STACK ?= dev
OUT   ?= build/render

.PHONY: install render render-all tools test clean

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

tools:
	@scripts/install-tools.sh

test: install tools
	$(PY) -m pytest

clean:
	rm -rf $(OUT) .pytest_cache
