"""The pack's policies, one module per area, loaded as `rules` (docs/engine-rules.md#policy-pack-runtime)."""

from __future__ import annotations

if __name__ != "rules":
    raise ImportError(
        f"the policy pack's rules were imported as {__name__!r}: import them as `rules`, with policies/ on "
        "sys.path, as the pack itself loads them"
    )

from pulumi_policy import Policy

from .argocd import ARGOCD_PROJECT_SCOPED, ARGOCD_SYNC_RETRY, HEALTH_CHECK_REQUIRED
from .hygiene import CONTAINER_RESOURCES, PULL_SECRET_TYPE
from .images import IMAGE_PINNED_BY_DIGEST, IMAGE_SIZE_LIMIT, IMAGE_SIZE_REGISTRY, WORKLOAD_USES_BUILT_IMAGE
from .replicas import MINIMUM_REPLICAS, MINIMUM_REPLICAS_RENDERED

POLICIES: list[Policy] = [
    IMAGE_SIZE_LIMIT,
    IMAGE_SIZE_REGISTRY,
    MINIMUM_REPLICAS,
    MINIMUM_REPLICAS_RENDERED,
    WORKLOAD_USES_BUILT_IMAGE,
    IMAGE_PINNED_BY_DIGEST,
    ARGOCD_SYNC_RETRY,
    ARGOCD_PROJECT_SCOPED,
    HEALTH_CHECK_REQUIRED,
    PULL_SECRET_TYPE,
    CONTAINER_RESOURCES,
]
