"""Build once, promote the verified digest: read each app's gated digest from the upstream stack.

A promoting stack (`gitops-deploy:promote: {from: <stack>}`) builds nothing. It reads the upstream
stack's `apps` export through a `pulumi.StackReference` and deploys each app's `imageDigest`, the
digest that passed that app's health gate upstream. The engine reads a StackReference in previews
too ("Read steps run during previews", `ReadStep.Apply` in pulumi/pulumi
`pkg/resource/deploy/step.go`; the builtin provider's `readStackReference` in
`pkg/resource/deploy/builtins.go` asks the backend for the stack's outputs), so a PR preview
already shows, and checks, the digests that an `up` would deploy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from model.config import NAMESPACE, PromoteConfig
from model.image_ref import REPO_DIGEST

APPS_OUTPUT = "apps"
"""The upstream stack's export that maps each app to its `imageDigest`."""


class PromotionError(pulumi.RunError):
    """The upstream stack cannot supply an app's digest; the message names the app and the stack."""


def stack_reference_name(promote: PromoteConfig, organization: str | None, project: str) -> str:
    """The fully qualified name the backend resolves: `<org>/<project>/<stack>`.

    Both backends take `org/project/stack`. Pulumi Cloud resolves a bare name in the user's *default*
    org, not the running stack's (`cloudBackend.ParseStackReference`, pkg/backend/httpstate/backend.go),
    so the name is qualified with the running stack's org, which `pulumi.get_organization()` gives.
    A DIY backend's org is always `organization` (pkg/backend/diy/store.go, `ParseReference`), which
    is also what the engine reports there (pkg/backend/diy/state.go). A name given qualified is
    used as is. Without an org (an engine that sends none) the bare name is left to the backend.
    """
    if "/" in promote.from_stack:
        return promote.from_stack
    if not organization:
        return promote.from_stack
    return f"{organization}/{project}/{promote.from_stack}"


@dataclass(frozen=True)
class Wanted:
    """One app this stack promotes: its name, its repository and where its pin would go."""

    app: str
    repository: str
    index: int
    """Position in `gitops-deploy:apps`, for the pin key in the error."""


def upstream_digests(apps: Any, wanted: Sequence[Wanted], *, upstream: str) -> dict[str, str]:
    """Each wanted app's digest that passed its health gate upstream; one PromotionError for every miss."""
    where = f"{NAMESPACE}:promote: stack '{upstream}'"
    if not isinstance(apps, Mapping):
        raise PromotionError(
            f"{where} exports no '{APPS_OUTPUT}' (has it been deployed with this program?); "
            "expected each app's imageDigest there"
        )
    digests: dict[str, str] = {}
    problems: list[str] = []
    for want in wanted:
        entry = apps.get(want.app)
        digest = entry.get("imageDigest") if isinstance(entry, Mapping) else None
        match = REPO_DIGEST.fullmatch(digest) if isinstance(digest, str) else None
        pin = f"{NAMESPACE}:apps[{want.index}].image.pin"
        if entry is None:
            known = ", ".join(sorted(map(str, apps))) or "none"
            problems.append(
                f"app '{want.app}' is not in stack '{upstream}' (its apps: {known}); "
                f"deploy it there first, or set {pin}"
            )
        elif match is None:
            problems.append(
                f"app '{want.app}' has no verified digest in stack '{upstream}' (got {digest!r}); "
                f"let its health gate pass there first, or set {pin}"
            )
        elif match.group("repo") != want.repository:
            problems.append(
                f"app '{want.app}' runs {digest!r} in stack '{upstream}'; this stack expects an image "
                f"of '{want.repository}' (image.repository must be the same in both stacks)"
            )
        else:
            digests[want.app] = match.group(0)
    if problems:
        noun = "app" if len(problems) == 1 else "apps"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PromotionError(f"{where} cannot supply {len(problems)} {noun}:\n{lines}")
    return digests
