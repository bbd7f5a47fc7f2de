# Two commands for a fresh clone:
#   make render   # install the program's dependencies (uv, from uv.lock), render the dev stack offline
#   make test     # add the test dependencies and tools (promtool, checkov), run the whole suite
#
# Dependencies come from the committed uv.lock, so `make`, `pulumi up` (toolchain: uv in
# Pulumi.yaml) and CI install the same versions. uv is used from the PATH, or installed
# (pinned) into .venv-uv on first use.

VENV  ?= .venv
PY    := $(VENV)/bin/python
TOOLS ?= .venv-tools
RAYENV ?= .venv-ray
STACK ?= dev
OUT   ?= build/render
UV_VERSION := 0.13.9
UV    ?= $(shell command -v uv 2>/dev/null || echo .venv-uv/bin/uv)
# never download a Python: use the python3 that is here (>= 3.10)
export UV_PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install install-test render render-all tools lint test mutation lock uv-version clean

.venv-uv/bin/uv:
	python3 -m venv .venv-uv
	.venv-uv/bin/pip install --quiet "uv==$(UV_VERSION)"

# runtime dependencies only (--inexact keeps the test extras a previous `make test` added)
install: $(if $(filter .venv-uv/bin/uv,$(UV)),.venv-uv/bin/uv)
	$(UV) sync --frozen --inexact --quiet

install-test: $(if $(filter .venv-uv/bin/uv,$(UV)),.venv-uv/bin/uv)
	$(UV) sync --frozen --extra test --quiet

render: install
	$(PY) -m llm_infra render --stack $(STACK) --out $(OUT)/$(STACK)

render-all: install
	$(PY) -m llm_infra render --all --out $(OUT) --quiet

# checkov pins many libraries of its own and parliament needs pkg_resources: they get a
# virtualenv of their own, from their own
# fully pinned requirements (regenerate: uv pip compile requirements-tools.in -o requirements-tools.txt).
$(TOOLS)/.installed: requirements-tools.txt $(if $(filter .venv-uv/bin/uv,$(UV)),.venv-uv/bin/uv)
	$(UV) venv --quiet --allow-existing $(TOOLS)
	$(UV) pip install --quiet --python $(TOOLS)/bin/python -r requirements-tools.txt
	touch $@

# Ray Serve (its own virtualenv: its packaging pin conflicts with checkov's); the tests validate
# serveConfigV2 with Ray's ServeDeploySchema/LLMConfig (regenerate: uv pip compile requirements-ray.in
# --python-version 3.11 -o requirements-ray.txt)
$(RAYENV)/.installed: requirements-ray.txt $(if $(filter .venv-uv/bin/uv,$(UV)),.venv-uv/bin/uv)
	$(UV) venv --quiet --allow-existing $(RAYENV)
	$(UV) pip install --quiet --python $(RAYENV)/bin/python -r requirements-ray.txt
	touch $@

tools: $(TOOLS)/.installed $(RAYENV)/.installed
	@scripts/install-tools.sh

# ruff (lint + format check, pyproject [tool.ruff]) and pyright over the whole repository
# (pyproject [tool.pyright]); any finding fails. `make test` runs it first.
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/typecheck.py

# LINT= skips the lint step (the pull-request workflow runs `make lint` as a step of its own)
LINT ?= lint
test: install-test tools $(LINT)
	CHECKOV=$(TOOLS)/bin/checkov PARLIAMENT=$(TOOLS)/bin/parliament RAY_PYTHON=$(RAYENV)/bin/python $(PY) -m pytest

# Not in CI: one-line bugs (scripts/mutation_run.py) against the fast part of the suite.
mutation: install-test tools
	PARLIAMENT=$(TOOLS)/bin/parliament $(PY) scripts/mutation_run.py --report build/mutation.json

# the pinned uv version (the workflows install it for the Pulumi CLI)
uv-version:
	@echo $(UV_VERSION)

# after changing dependencies in pyproject.toml
lock: $(if $(filter .venv-uv/bin/uv,$(UV)),.venv-uv/bin/uv)
	$(UV) lock

clean:
	rm -rf $(OUT) .pytest_cache
