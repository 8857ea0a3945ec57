"""The health gate's trigger: a stable hash of everything an app's Application hands Argo CD.

The HealthCheck provider re-probes only when its `trigger` input (or one of its own settings)
changes. So the trigger must change whenever what Argo CD deploys changes, and only then: a new
image digest, but also a new `targetRevision`, chart values, replica count or destination.

A rollback needs one more thing. A failed HealthCheck update keeps its old state. The snapshot
(`Snapshot` in pulumi/pulumi `pkg/resource/deploy/snapshot.go`) is written by the SnapshotManager in
`pkg/backend/snapshot.go`: `updateSnapshotMutation.End(step, false)` marks the operation complete (no
pending operation is left) but neither retires the old state nor records the new one, so the old
state is carried over. `OnResourceStepPost` (`pkg/engine/update.go`) passes `successful=false` for
any error but a `StatusPartialFailure`; `UpdateStep.Apply` (`pkg/resource/deploy/step.go`) returns
before copying any output when the provider errs; and `continueExecuteStep`
(`pkg/resource/deploy/step_executor.go`) stores the step's new state as pending only on success. The
dynamic provider's exceptions reach the engine as plain gRPC errors, never partial failures. The
stored trigger is therefore still the last release that passed. A rollback pins exactly that release, so
without more the diff would see no change and nothing would be probed; the rollback's own id,
set by `python -m deploy` for the rollback's `up` only, makes the pinned apps' trigger new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ReleaseSpec:
    """What one app's Application hands Argo CD (spec.source, spec.destination, spec.project)."""

    repo_url: str
    """`spec.source.repoURL`."""
    target_revision: str
    """`spec.source.targetRevision`."""
    path: str
    """`spec.source.path`: the chart or overlay folder."""
    source_type: str
    """`helm` or `kustomize`: which values block Argo CD receives."""
    image_name: str
    """Kustomize's image name that the digest replaces (the repository for Helm)."""
    replicas: int
    """Helm `replicaCount`, or the kustomize replicas override."""
    destination: Mapping[str, str] = field(default_factory=dict)
    """`spec.destination`: cluster (`name` or `server`) and namespace."""
    project: str = "default"
    """`spec.project`."""
    image_digest: str = ""
    """`repository@sha256:...` the values pin."""
    image_tag: str = ""
    """Helm `image.tag` (the content tag; empty for a pinned or promoted image)."""
    pull_secret: str = ""
    """Helm `imagePullSecrets[0].name`."""
    rollback_id: str | None = None
    """The rollback's id, on pinned apps during a rollback `up` only: the restored release is probed."""
    workload: str = ""
    """Kustomize's name of the workload that gets the replica count (the app's name by default)."""


def release_trigger(spec: ReleaseSpec) -> str:
    """`sha256:<hex>` over the canonical JSON of every field: equal releases give equal triggers."""
    document = json.dumps(asdict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(document.encode("ascii")).hexdigest()
