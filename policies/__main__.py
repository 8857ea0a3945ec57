"""The gitops-deploy policy pack: constructing it starts the analyzer's gRPC server and blocks."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import PACK_NAME, POLICIES  # the CLI runs this directory, so `rules` is top-level here

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
