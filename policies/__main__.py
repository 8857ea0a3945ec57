"""The gitops-deploy policy pack: constructing it starts the analyzer's gRPC server and blocks."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import POLICIES  # the CLI runs this directory, so `rules` is top-level here
from rules.names import PROJECT

PolicyPack(name=PROJECT, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
