"""pull-secret-type: image pull secrets are `kubernetes.io/dockerconfigjson`."""

from __future__ import annotations

from typing import Any

from pulumi_policy.proxy import UnknownValueError

from .names import DOCKERCONFIGJSON, PULL_SECRET_ROLE_KEY, PULL_SECRET_ROLE_VALUE, SECRET_TYPE
from .props import ADVISORY, brief, get_path, label, mapping, resource_policy

_DOCKER_KEYS = {".dockerconfigjson", ".dockercfg"}


def _data_keys(props: Any) -> set[str]:
    """Keys of `data` and `stringData`; only keys, values may be secret and are never read."""
    keys: set[str] = set()
    for field in ("data", "stringData"):
        try:
            keys.update(str(k) for k in mapping(get_path(props, field)) or ())
        except UnknownValueError:
            continue
    return keys


def is_pull_secret(props: Any) -> bool:
    """Labelled as the app's pull secret, carrying docker config keys, or typed as one."""
    if get_path(props, "metadata", "labels", PULL_SECRET_ROLE_KEY) == PULL_SECRET_ROLE_VALUE:
        return True
    type_ = get_path(props, "type")
    return (isinstance(type_, str) and type_.startswith("kubernetes.io/dockerc")) or bool(
        _data_keys(props) & _DOCKER_KEYS
    )


def pull_secret_findings(props: Any, name: str) -> list[str]:
    """A message if a pull secret is not of type dockerconfigjson or lacks its `.dockerconfigjson` key."""
    if not is_pull_secret(props):
        return []
    what, type_, keys = label(SECRET_TYPE, props, name), get_path(props, "type"), _data_keys(props)
    fix = (
        f"Fix: type: {DOCKERCONFIGJSON} with a `.dockerconfigjson` key "
        "(`kubectl create secret docker-registry` makes one; components/registry_secret.py does)."
    )
    if type_ != DOCKERCONFIGJSON:
        return [f"{what}: type is {brief(type_)}, expected {DOCKERCONFIGJSON!r}. {fix}"]
    if keys and ".dockerconfigjson" not in keys:
        return [f"{what}: has keys {sorted(keys)} but no '.dockerconfigjson'. {fix}"]
    return []


PULL_SECRET_TYPE = resource_policy(
    "pull-secret-type",
    "Image pull secrets are of type kubernetes.io/dockerconfigjson.",
    ADVISORY,
    lambda args: pull_secret_findings(args.props, args.name),
    types=(SECRET_TYPE,),
)
