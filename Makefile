# The README's two commands: `make up STACK=dev` (the main job) and `make test`.
SHELL := /bin/bash
STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE_DIR := $(CURDIR)/.pulumi-state

.PHONY: venv schemas up preview test lint pytest bench policy-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -r policies/requirements.txt
	touch $@

venv: $(VENV)/.installed

# Argo CD's Application schema for the tests, pinned by tests/schemas/package-lock.json (npm package
# @kubernetes-models/argo-cd); installed into the ignored tests/schemas/node_modules/.
SCHEMAS := tests/schemas/node_modules/.package-lock.json
$(SCHEMAS): tests/schemas/package.json tests/schemas/package-lock.json
	cd tests/schemas && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

schemas: $(SCHEMAS)

# Log in to a local file backend only when no backend is configured, then select (or create) the stack.
# On a stack's first run, ask for the registry password (stored encrypted, never in plaintext); the
# stack file is read rather than `pulumi config get`, which would need the passphrase to decrypt it.
define pulumi_stack
	@command -v pulumi >/dev/null || { echo "make: the Pulumi CLI is not on PATH;" \
		"install it: https://www.pulumi.com/docs/install/" >&2; exit 1; }
	@if [ -z "$${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then \
		mkdir -p "$(STATE_DIR)" && pulumi login "file://$(STATE_DIR)"; fi
	pulumi stack select --create "$(STACK)"
	@if ! grep -Eqs '^[[:space:]]+gitops-deploy:registryPassword:' "Pulumi.$(STACK).yaml"; then \
		echo "Stack $(STACK) has no registry password yet; enter it (it is stored encrypted):"; \
		pulumi config set --stack "$(STACK)" --secret gitops-deploy:registryPassword; fi
endef

up: venv
	$(pulumi_stack)
	pulumi up --stack "$(STACK)" --policy-pack policies --policy-pack-config "policies/config.$(STACK).json"

preview: venv
	$(pulumi_stack)
	pulumi preview --diff --stack "$(STACK)" --policy-pack policies --policy-pack-config "policies/config.$(STACK).json"

policy-check: venv
	$(PY) -m policies.check --stack "$(STACK)"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy .

pytest: venv schemas
	$(PY) -m pytest

test: lint pytest

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) "$$b" || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/schemas/node_modules
