"""gitops-deploy: validate the stack, lint its Dockerfiles, then declare every app's release."""

from __future__ import annotations

from pathlib import Path

from clients.dockerlint import lint_stack
from components.deployment import deploy, settle_collector
from model.config import load_config

PROJECT_DIR = Path(__file__).resolve().parent

settle_collector()
config, secrets = load_config(PROJECT_DIR)
# Fails the run before any resource is registered, in preview and in up alike.
lint_stack(config)
deploy(config, secrets)
