"""gitops-deploy: validate the stack, lint its Dockerfiles, then declare every app's release."""

from __future__ import annotations

import gc
from pathlib import Path

from clients.dockerlint import lint_stack
from components.deployment import deploy
from model.config import load_config

PROJECT_DIR = Path(__file__).resolve().parent

# The SDKs' modules live as long as the run: kept out of every full collection, which would walk them each
# time; once per process, so that a process running the program again freezes no garbage of its last run.
if gc.get_freeze_count() == 0:
    gc.freeze()

config, secrets = load_config(PROJECT_DIR)
# Fails the run before any resource is registered, in preview and in up alike.
lint_stack(config)
deploy(config, secrets)
