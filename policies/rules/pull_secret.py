"""pull-secret-type: image pull secrets are `kubernetes.io/dockerconfigjson`."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .props import PULL_SECRET_ROLE, SECRET, UnknownValueError, brief, get_path, label, mapping

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
_DOCKER_KEYS = (".dockerconfigjson", ".dockercfg")


def _data_keys(props: Any) -> set[str]:
    """Keys of `data` and `stringData`; only keys, values may be secret and are never read."""
    keys: set[str] = set()
    for field in ("data", "stringData"):
        try:
            data = mapping(get_path(props, field))
        except UnknownValueError:
            continue
        if data is not None:
            keys.update(str(k) for k in data)
    return keys


def is_pull_secret(props: Any) -> bool:
    """Labelled as the app's pull secret, carrying docker config keys, or typed as one."""
    if get_path(props, "metadata", "labels", PULL_SECRET_ROLE[0]) == PULL_SECRET_ROLE[1]:
        return True
    type_ = get_path(props, "type")
    if isinstance(type_, str) and type_.startswith("kubernetes.io/dockerc"):
        return True
    return bool(_data_keys(props) & set(_DOCKER_KEYS))


def pull_secret_findings(props: Any, name: str) -> list[str]:
    """A message if a pull secret is not of type dockerconfigjson or lacks its `.dockerconfigjson` key."""
    if not is_pull_secret(props):
        return []
    what = label(SECRET, props, name)
    type_ = get_path(props, "type")
    fix = (
        f"Fix: type: {DOCKERCONFIGJSON} with a `.dockerconfigjson` key "
        "(`kubectl create secret docker-registry` makes one; components/app_release.py does)."
    )
    if type_ != DOCKERCONFIGJSON:
        return [f"{what}: type is {brief(type_)}, expected {DOCKERCONFIGJSON!r}. {fix}"]
    keys = _data_keys(props)
    if keys and ".dockerconfigjson" not in keys:
        return [f"{what}: has keys {sorted(keys)} but no '.dockerconfigjson'. {fix}"]
    return []


def _validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SECRET:
        return
    for message in pull_secret_findings(args.props, args.name):
        report(message, None)


PULL_SECRET_TYPE = ResourceValidationPolicy(
    name="pull-secret-type",
    description="Image pull secrets are of type kubernetes.io/dockerconfigjson.",
    validate=_validate,
    enforcement_level=EnforcementLevel.ADVISORY,
)
