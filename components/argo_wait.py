"""When `pulumi up` may call an Argo CD Application done: the `pulumi.com/waitFor` conditions, pinned to
the release this update wrote, then Synced, then its workload Healthy
(docs/engine-rules.md#pulumi-kubernetes-await-conditions)."""

from __future__ import annotations

import json
import re

from model.config import SourceConfig
from model.release_workload import APP_TREE, WORKLOAD_KINDS, ReleaseWorkload

COMPARED_SOURCE = ".status.sync.comparedTo.source"
"""Where Argo CD records the spec source its current sync status and health describe."""
SYNCED = "jsonpath={.status.sync.status}=Synced"
HEALTHY = "Healthy"
HEALTH_PATH = re.compile(r"\{[^{}]*\.health\.status\s*\}")
"""The health condition's braced path as pulumi-kubernetes prints it: the only one ending `.health.status`
(string literals carry braces only as escapes)."""
RFC9535_SINCE = "4.24.0"
"""The first pulumi-kubernetes whose waitFor parser is RFC 9535 (provider/pkg/jsonpath/jsonpath.go at
v4.24.0, CHANGELOG 4.24.0); 4.18-4.23 parse with client-go's JSONPath, which refuses the kustomize
filter `[?@ == '...']`. The package's version is the plugin's, so requirements.txt's floor is this."""

_PLAIN = re.compile(r"[A-Za-z0-9._/:@-]")


def jsonpath_string(text: str) -> str:
    """An RFC 9535 single-quoted string literal, with every non-plain character as `\\uXXXX`.

    This keeps `=` (pulumi-kubernetes' value separator), braces (its path delimiters) and quotes out
    of the raw expression, whatever an app or image is named.
    """
    parts = []
    for ch in text:
        if _PLAIN.fullmatch(ch):
            parts.append(ch)
        elif ord(ch) <= 0xFFFF:
            parts.append(f"\\u{ord(ch):04x}")
        else:  # a surrogate pair, as RFC 9535 spells characters beyond the BMP
            code = ord(ch) - 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "'" + "".join(parts) + "'"


def _kinds_filter() -> str:
    """`@.group == 'apps' && (@.kind == 'Deployment' || ...) || ...`: WORKLOAD_KINDS as an RFC 9535 test."""
    groups: dict[str, list[str]] = {}
    for group, kind in sorted(WORKLOAD_KINDS):
        groups.setdefault(group, []).append(f"@.kind == {jsonpath_string(kind)}")
    tests = []
    for group, kinds in groups.items():
        either = kinds[0] if len(kinds) == 1 else "(" + " || ".join(kinds) + ")"
        tests.append(f"@.group == {jsonpath_string(group)} && {either}")
    return " || ".join(tests)


def workload_healthy(workload: ReleaseWorkload) -> str:
    """The condition that the release's workload is Healthy (the app's health where no resource's is kept)."""
    app_tree = f"@.resourceHealthSource == {jsonpath_string(APP_TREE)}"
    named = (
        f"@.name == {jsonpath_string(workload.name)} && @.namespace == {jsonpath_string(workload.namespace)}"
    )
    return f"jsonpath={{$..[?{app_tree} || {named} && ({_kinds_filter()})].health.status}}={HEALTHY}"


def release_conditions(
    source: SourceConfig, repository: str, digest: str, replicas: int, workload: ReleaseWorkload
) -> list[str]:
    """The conditions, in order, for the release that runs `repository@digest` with `replicas` replicas."""
    if source.type == "helm":
        values = f"{COMPARED_SOURCE}.helm.valuesObject"
        identity = [
            f"jsonpath={{{values}.image.digest}}={digest}",
            f"jsonpath={{{values}.replicaCount}}={replicas}",
        ]
    else:
        kustomize = f"{COMPARED_SOURCE}.kustomize"
        image = jsonpath_string(f"{source.image_name}={repository}@{digest}")
        # The replicas entry names the overlay's workload (source.workload), as the program wrote it.
        scaled = jsonpath_string(source.workload)
        identity = [
            f"jsonpath={{{kustomize}.images[?@ == {image}]}}",
            f"jsonpath={{{kustomize}.replicas[?@.name == {scaled}].count}}={replicas}",
        ]
    return [*identity, SYNCED, workload_healthy(workload)]


def wait_for(
    source: SourceConfig, repository: str, digest: str, replicas: int, workload: ReleaseWorkload
) -> str:
    """The `pulumi.com/waitFor` annotation value: a JSON array of the release's conditions."""
    return json.dumps(release_conditions(source, repository, digest, replicas, workload))
