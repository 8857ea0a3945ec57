"""RegistrySecret: the app's image pull secret, built from the secret registry password."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from model.names import (
    DOCKERCONFIGJSON,
    PULL_SECRET_ROLE,
    PULL_SECRET_SUFFIX,
    REGISTRY_SECRET_TYPE,
    app_labels,
    pull_secret_name,
)


def dockerconfigjson(server: str, username: str, password: str) -> str:
    """The base64 `.dockerconfigjson` for one registry, as `kubectl create secret docker-registry` does."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
    return base64.b64encode(json.dumps(config, sort_keys=True).encode()).decode()


@dataclass(frozen=True)
class RegistrySecretArgs:
    """Inputs of a RegistrySecret."""

    app: str
    """App name; the Secret is called `<app>-registry`."""
    namespace: pulumi.Input[str]
    """Namespace the app's pods run in."""
    server: str
    """Registry host the credentials are for."""
    username: str
    """Registry user."""
    password: pulumi.Output[str]
    """Registry password, already a secret Output."""


class RegistrySecret(pulumi.ComponentResource):
    """A `kubernetes.io/dockerconfigjson` Secret whose data is secret from end to end."""

    secret_name: pulumi.Output[str]
    """Name of the Secret, for `imagePullSecrets`."""

    def __init__(
        self, name: str, args: RegistrySecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(REGISTRY_SECRET_TYPE, name, None, opts)
        # The password Output is secret, so everything derived from it stays secret.
        data = args.password.apply(lambda pw: dockerconfigjson(args.server, args.username, pw))
        secret = k8s.core.v1.Secret(
            f"{name}{PULL_SECRET_SUFFIX}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pull_secret_name(args.app),
                namespace=args.namespace,
                labels={**app_labels(args.app), **PULL_SECRET_ROLE},
            ),
            type=DOCKERCONFIGJSON,
            data={".dockerconfigjson": pulumi.Output.secret(data)},  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = secret.metadata.apply(lambda m: m.name or pull_secret_name(args.app))
        self.register_outputs({"secret_name": self.secret_name})
