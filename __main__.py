"""gitops-deploy: validate the stack, lint its Dockerfiles, then declare every app's release."""

from __future__ import annotations

from pathlib import Path

from components.config import load_config
from components.deployment import deploy

PROJECT_DIR = Path(__file__).resolve().parent

config, secrets = load_config(PROJECT_DIR)
deploy(config, secrets)
