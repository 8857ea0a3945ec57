"""Pulumi.yaml's config reference and docs/config.md are the schema's: generated, never edited apart."""

from __future__ import annotations

import yaml

from model.config_docs import CONFIG_MD, PULUMI_YAML, config_md, pulumi_yaml
from model.config_schema import KEYS, NAMESPACE


def test_pulumi_yaml_documents_the_schema() -> None:
    text = PULUMI_YAML.read_text(encoding="utf-8")
    assert text == pulumi_yaml(text), "Pulumi.yaml is out of date: run python -m model.config_docs"
    declared = yaml.safe_load(text)["template"]["config"]
    assert list(declared) == [f"{NAMESPACE}:{k}" for k in KEYS]


def test_the_config_reference_page_documents_the_schema() -> None:
    assert CONFIG_MD.read_text(encoding="utf-8") == config_md(), "run python -m model.config_docs"
