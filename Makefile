# The README's commands: `make up STACK=dev` (the main job), `make test`, and `make policy-check STACK=dev`
# (the policy pack on a stack, with no Pulumi CLI, Docker or cluster).
SHELL := /bin/bash
STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE_DIR := $(CURDIR)/.pulumi-state
STACK_FILE := Pulumi.$(STACK).yaml
# Extra options for `make policy-check`, e.g. ARGS="--build --format markdown".
ARGS ?=
# The slow tests (real registries, chart rendering, gRPC servers, a Docker Engine, the deploy against the
# stand-in CLI): `make test-fast` skips them.
SLOW_MARKERS := not registry and not render and not grpc and not docker and not cli

.PHONY: venv schemas up preview test test-fast test-floor lint pytest bench policy-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -r policies/requirements.txt
	touch $@

venv: $(VENV)/.installed

# `make test-floor`: the oldest versions the requirement files admit, each `>=X` installed as `==X`
# (tests/support/floors.py reads the files, so a new requirement is covered), in a virtualenv of their
# own. Everything pip resolves beyond them is what a user with those versions would get.
FLOOR_VENV := .venv-floor
FLOOR_PY := $(FLOOR_VENV)/bin/python
FLOOR_REQUIREMENTS := requirements-dev.txt policies/requirements.txt
# Every marker but `cli`: its cases start the deploy against the stand-in CLI, a subprocess each, for what
# the unmarked deploy tests already run of the Automation API (docs/testing.md).
FLOOR_MARKERS := not cli

# The pins are read with `packaging`, installed first; pip then settles it with the pinned packages.
$(FLOOR_VENV)/.installed: requirements.txt $(FLOOR_REQUIREMENTS) tests/support/floors.py
	rm -rf $(FLOOR_VENV)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install --quiet --upgrade pip packaging
	$(FLOOR_PY) -m tests.support.floors $(FLOOR_REQUIREMENTS) > $(FLOOR_VENV)/floors.txt
	$(FLOOR_PY) -m pip install --quiet -r $(FLOOR_VENV)/floors.txt
	touch $@

# Argo CD's Application schema and GitHub's OpenAPI description for the tests, pinned by
# tests/schemas/package-lock.json (npm packages @kubernetes-models/argo-cd and @octokit/openapi);
# installed into the ignored tests/schemas/node_modules/.
SCHEMAS := tests/schemas/node_modules/.package-lock.json
$(SCHEMAS): tests/schemas/package.json tests/schemas/package-lock.json
	cd tests/schemas && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

schemas: $(SCHEMAS)

# What `make up` and `make preview` need, checked before the virtualenv is built: the Pulumi CLI, and a
# Docker engine that answers when the stack builds images (every stack that does not promote; in a
# preview, unless gitops-deploy:build.onPreview is false). The stack file is read with grep, as
# Python's YAML reader is not installed yet. $(1) is `up` or `preview`.
define prerequisites
	@command -v pulumi >/dev/null || { \
		echo "make $(1): the Pulumi CLI is not on PATH; install it: https://www.pulumi.com/docs/install/" >&2; \
		echo "  Without it, \`make policy-check STACK=$(STACK)\` judges the stack with the policy pack." >&2; \
		exit 1; }
	@builds=yes; \
	if grep -Eqs '^[[:space:]]+gitops-deploy:promote:' "$(STACK_FILE)"; then builds=no; fi; \
	if [ "$(1)" = preview ] && grep -Eqs '^[[:space:]]+onPreview:[[:space:]]*false' "$(STACK_FILE)"; then \
		builds=no; fi; \
	if [ "$$builds" = yes ] && ! docker info >/dev/null 2>&1; then \
		echo "make $(1): no Docker engine answers (\`docker info\` failed), and stack $(STACK) builds its" \
			"images$(if $(filter preview,$(1)), during the preview,)." >&2; \
		echo "  Start Docker (or set DOCKER_HOST)$(if $(filter preview,$(1)), or set" \
			"gitops-deploy:build.onPreview: false in $(STACK_FILE),). Without it," \
			"\`make policy-check STACK=$(STACK)\` judges the stack with the policy pack." >&2; \
		exit 1; fi
endef

# Log in to a local file backend only when no backend is configured, then select (or create) the stack.
# On a stack's first run, ask for the registry password (stored encrypted, never in plaintext); the
# stack file is read rather than `pulumi config get`, which would need the passphrase to decrypt it.
define pulumi_stack
	@if [ -z "$${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then \
		mkdir -p "$(STATE_DIR)" && pulumi login "file://$(STATE_DIR)"; fi
	pulumi stack select --create "$(STACK)"
	@if ! grep -Eqs '^[[:space:]]+gitops-deploy:registryPassword:' "$(STACK_FILE)"; then \
		echo "Stack $(STACK) has no registry password yet; enter it (it is stored encrypted):"; \
		pulumi config set --stack "$(STACK)" --secret gitops-deploy:registryPassword; fi
endef

up:
	$(call prerequisites,up)
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) venv
	$(pulumi_stack)
	pulumi up --stack "$(STACK)" --policy-pack policies --policy-pack-config "policies/config.$(STACK).json"

preview:
	$(call prerequisites,preview)
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) venv
	$(pulumi_stack)
	pulumi preview --diff --stack "$(STACK)" --policy-pack policies --policy-pack-config "policies/config.$(STACK).json"

policy-check: venv
	$(PY) -m policy_check --stack "$(STACK)" $(ARGS)

# The pack's __main__.py is checked on its own: next to the program's __main__.py it would be a duplicate.
lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(PY) -m mypy policies/__main__.py

pytest: venv schemas
	$(PY) -m pytest

test: lint pytest

test-fast: lint schemas
	$(PY) -m pytest -m "$(SLOW_MARKERS)"

# The tests on the floors (no lint: ruff and mypy judge the code, not the versions it runs on).
test-floor: $(FLOOR_VENV)/.installed schemas
	$(FLOOR_PY) -m pytest -p no:cacheprovider -m "$(FLOOR_MARKERS)"

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) "$$b" || exit 1; done

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .pytest_cache .mypy_cache .ruff_cache tests/schemas/node_modules
