"""AppImage: build and push one app's image, or use a pinned or promoted digest; expose the repo digest."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi.output import UNKNOWN

from model.content_tag import content_tag
from model.image_ref import is_repo_digest
from model.names import APP_IMAGE_TYPE, IMAGE_SUFFIX


def pushed_digest(repo_digest: str) -> Any:
    """pulumi-docker's `repoDigest` when it names a pushed image; unknown in a preview that only built it.

    In a preview, pulumi-docker answers the local build's ID (`sha256:...`, see model/image_ref.py),
    which no registry holds: the digest is pending until the push, so it is unknown, as the SDK makes a
    value unknown from an `apply` (pulumi/output.py: `_OutputData` is never known when its value
    contains `UNKNOWN`, and `rpc.serialize_property` sends an unknown Output as the unknown sentinel).
    Outside a preview the value passes through, so `split_digest` still rejects a malformed one.
    """
    if pulumi.runtime.is_dry_run() and not is_repo_digest(repo_digest):
        return UNKNOWN
    return repo_digest


def local_image_id(repo_digest: str) -> str:
    """The local build's ID when pulumi-docker answered one in a preview; "" otherwise."""
    return repo_digest if pulumi.runtime.is_dry_run() and not is_repo_digest(repo_digest) else ""


@dataclass(frozen=True)
class AppImageArgs:
    """Inputs of an AppImage."""

    repository: str
    """Repository on the registry, without tag."""
    context: Path
    """Build context (absolute)."""
    dockerfile: Path
    """Dockerfile (absolute)."""
    project_dir: Path
    """Paths are handed to the build relative to this, so state does not depend on the checkout's location."""
    platform: str
    """Target platform."""
    server: str
    """Registry host to push to."""
    username: str
    """Registry user."""
    password: pulumi.Output[str]
    """Registry password, a secret Output."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """`--build-arg` values."""
    build_on_preview: bool = True
    """Build during `pulumi preview` too (without pushing)."""
    pin: str | None = None
    """A digest reference to deploy instead of building."""
    promoted_digest: pulumi.Input[str] | None = None
    """The upstream stack's verified digest to deploy instead of building (a pin still wins)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the build waits for, such as the registry preflight."""


class AppImage(pulumi.ComponentResource):
    """The app's image, referred to by digest everywhere downstream."""

    repo_digest: pulumi.Output[str]
    """`repository@sha256:...` of the pushed, pinned or promoted image; unknown (pending) in a preview."""
    local_image_id: pulumi.Output[str]
    """In a preview that built the image: its ID in the local engine (`sha256:...`); "" otherwise."""
    image_ref: pulumi.Output[str]
    """What ImageSize measures: the pushed, pinned or promoted digest, or in a preview the local image ID."""
    tag: pulumi.Output[str]
    """The content-derived tag the image was pushed with; empty for a pinned or promoted image."""

    def __init__(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(APP_IMAGE_TYPE, name, None, opts)
        if args.pin is not None:
            # The rollback path: nothing is built, the last known good digest is deployed as is.
            self.repo_digest = pulumi.Output.from_input(args.pin)
            self.local_image_id = pulumi.Output.from_input("")
            self.image_ref = self.repo_digest
            self.tag = pulumi.Output.from_input("")
        elif args.promoted_digest is not None:
            # Build once, promote: the digest that passed its health gate upstream, never rebuilt here.
            self.repo_digest = pulumi.Output.from_input(args.promoted_digest)
            self.local_image_id = pulumi.Output.from_input("")
            self.image_ref = self.repo_digest
            self.tag = pulumi.Output.from_input("")
        else:
            tag = content_tag(
                args.context, args.dockerfile, args.platform, args.build_args, root=args.project_dir
            )
            image = docker.Image(
                f"{name}{IMAGE_SUFFIX}",
                image_name=f"{args.repository}:{tag}",
                build=docker.DockerBuildArgs(
                    context=os.path.relpath(args.context, args.project_dir),
                    dockerfile=os.path.relpath(args.dockerfile, args.project_dir),
                    platform=args.platform,
                    args=dict(args.build_args) or None,
                ),
                registry=docker.RegistryArgs(
                    server=args.server,
                    username=args.username,
                    password=pulumi.Output.secret(args.password),
                ),
                build_on_preview=args.build_on_preview,
                skip_push=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            self.image_ref = image.repo_digest
            self.repo_digest = image.repo_digest.apply(pushed_digest)
            self.local_image_id = image.repo_digest.apply(local_image_id)
            self.tag = pulumi.Output.from_input(tag)
        self.register_outputs(
            {"repo_digest": self.repo_digest, "local_image_id": self.local_image_id, "tag": self.tag}
        )
