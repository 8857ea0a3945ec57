"""Render what Argo CD will apply for each Application whose source is a folder of this repository."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as schemas
from referencing import Registry, Resource

from model.names import APPLICATION_TYPE
from model.text import QUOTE_KEEP, clip
from policy_check.kustomize_refs import kustomization_file
from policy_check.render_common import (
    MAX_RENDERS_IN_PARALLEL,
    CannotJudge,
    RenderBounds,
    RenderedObject,
    RenderError,
    RenderResult,
    object_label,
)
from policy_check.render_helm import HELM_TIMEOUT_SECONDS, HelmWorker, render_helm
from policy_check.render_kustomize import KUSTOMIZE_TIMEOUT_SECONDS, render_kustomize
from policy_check.render_source import Repository
from policy_check.simulate import UNKNOWN, SimResource

KUBERNETES_VERSION = "1.33"
"""Kubernetes version whose schema rendered objects are validated against (strict)."""
REMOTE_SOURCE = "remote source"
"""Reason of a source that is not a folder (a Helm repository's `chart:`, a path leaving the project)."""
UNKNOWN_REPOSITORY = Repository(None, "not given to the render")
"""What render_all assumes without a `repository`: none, so it renders nothing it cannot place."""
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "StorageClass", "CustomResourceDefinition", "ClusterRole",
        "ClusterRoleBinding", "PriorityClass", "IngressClass", "RuntimeClass", "APIService", "CSIDriver",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "VolumeAttachment", "CertificateSigningRequest",
    }
)  # fmt: skip
"""Kinds Argo CD applies without a namespace; every other object lands in the destination namespace."""
AUTOSCALED_KINDS = frozenset({"Deployment", "StatefulSet"})
"""Workloads whose omitted `replicas` an HPA owns (Kubernetes would otherwise run 1)."""


def type_token(api_version: str, kind: str) -> str:
    """pulumi-kubernetes' type token: `v1` is the `core` group, other groups keep their full name."""
    return f"kubernetes:{api_version if '/' in api_version else f'core/{api_version}'}:{kind}"


def child_urn(stack: str, parent_urn: str, type_: str, name: str) -> str:
    """The URN of a resource named `name` in `stack` whose parent has `parent_urn`."""
    _, project, chain, _ = parent_urn.split("::", 3)
    return f"urn:pulumi:{stack}::{project}::{chain}${type_}::{name}"


def _has_unknowns(value: Any) -> bool:
    """True when a value still holds a preview-time unknown."""
    if isinstance(value, dict):
        return any(_has_unknowns(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknowns(v) for v in value)
    return value == UNKNOWN


def _local_folder(path: Any, project_dir: Path) -> Path | None:
    """The source folder when it is a folder inside the project, else None."""
    if not isinstance(path, str) or not path or Path(path).is_absolute():
        return None
    root = project_dir.resolve()
    folder = (root / path).resolve()
    return folder if folder.is_dir() and folder.is_relative_to(root) else None


def _engine(source: dict[str, Any], folder: Path | None) -> str:
    """What Argo CD would pick: a Chart.yaml means Helm, a kustomization means kustomize."""
    if folder is not None:
        if (folder / "Chart.yaml").is_file():
            return "helm"
        if kustomization_file(folder) is not None:
            return "kustomize"
    return "kustomize" if "kustomize" in source else "helm"


@cache  # one per apiVersion and kind: the package's schemas are few, and a compiled one is reused
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate.validate's strict validator for `kind`, built once (its lookup, its registry)."""
    version = [v for v in schemas.all_versions() if schemas.major_minor(v) <= KUBERNETES_VERSION][-1]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schemas.schema_contents(f"{folder}/{kind.lower()}-{group}.json", KUBERNETES_VERSION)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(kind, KUBERNETES_VERSION, api_version) from None
    definitions = schemas.schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_object(manifest: dict[str, Any]) -> str | None:
    """The strict Kubernetes-schema error of one object, or None; kinds without a schema pass."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    try:
        if isinstance(api_version, str) and isinstance(kind, str):
            _validator(api_version, kind).validate(manifest)
        else:  # the package says what is wrong with such an object
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.path) or "(root)"
        message = err.message
        if not isinstance(err.instance, str):
            # A list or mapping the chart rendered (a file read with fromYaml) is named, never quoted whole;
            # a quoted string is cut where the report prints it (model/text.py `bounded`).
            shown = repr(err.instance)
            message = message.replace(shown, clip(shown, QUOTE_KEEP))
        return f"{message} at {where}"
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError):
        return None
    return None


def _objects(
    rendered: list[tuple[str | None, dict[str, Any]]],
    stack: str,
    app_urn: str,
    namespace: str | None,
    bounds: RenderBounds,
) -> tuple[list[RenderedObject], list[str]]:
    """Type, name and URN every object, defaulting its namespace as Argo CD does; collect schema errors."""
    objects, problems = [], []
    for template, manifest in rendered:
        bounds.check_time()
        metadata = manifest.setdefault("metadata", {})
        if not isinstance(metadata, dict):  # the schema check below names it; typing needs a mapping
            metadata = {}
        kind, name = str(manifest["kind"]), str(metadata.get("name", ""))
        if kind not in CLUSTER_SCOPED_KINDS and namespace and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        type_ = type_token(str(manifest["apiVersion"]), kind)
        problem = validate_object(manifest)
        if problem:
            problems.append(f"{kind}/{name}" + (f" ({template})" if template else "") + f": {problem}")
        objects.append(
            RenderedObject(
                type=type_,
                name=name,
                namespace=metadata.get("namespace"),
                urn=child_urn(stack, app_urn, type_, name),
                manifest=manifest,
                template=template,
            )
        )
    return objects, problems


def mark_autoscaled(objects: Sequence[RenderedObject]) -> list[RenderedObject]:
    """Set `scaled_by` on each Deployment/StatefulSet without `replicas` that a rendered HPA targets."""
    owners: dict[tuple[str | None, str, str], str] = {}
    for o in objects:
        if o.manifest.get("kind") != "HorizontalPodAutoscaler":
            continue
        spec = o.manifest.get("spec")
        target = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
        if isinstance(target, dict):
            key = (o.namespace, str(target.get("kind", "")), str(target.get("name", "")))
            owners[key] = object_label("HorizontalPodAutoscaler", o.namespace, o.name)
    marked = []
    for o in objects:
        spec = o.manifest.get("spec")
        kind = str(o.manifest.get("kind"))
        omitted = isinstance(spec, dict) and spec.get("replicas") is None
        owner = owners.get((o.namespace, kind, o.name)) if kind in AUTOSCALED_KINDS and omitted else None
        marked.append(replace(o, scaled_by=owner) if owner else o)
    return marked


def render_application(
    application: SimResource,
    project_dir: Path,
    stack: str,
    timeout: float | None = None,
    source_key: str | None = None,
    *,
    repository: Repository = UNKNOWN_REPOSITORY,
    allow_remote: bool = False,
    worker: HelmWorker | None = None,
) -> RenderResult:
    """Render one registered Application's source if it is a folder of `repository` (this checkout);
    `source_key` names its config key in errors, `allow_remote` lets kustomize fetch remote bases,
    `worker` renders a chart (else a worker of its own)."""
    spec = application.inputs.get("spec", {})
    app = _app_name(application)
    raw_source = spec.get("source") or {}
    # A source built from an unknown digest is unknown as a whole: in a preview of a new image, and
    # offline for a promoting stack, whose upstream digests only the backend knows.
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    path = str(source.get("path", source.get("chart", "")))
    namespace = spec.get("destination", {}).get("namespace")
    folder = None if "chart" in source else _local_folder(source.get("path"), project_dir)
    engine = _engine(source, folder)

    def result(
        status: str, reason: str, objects: Sequence[RenderedObject] = (), seconds: float = 0.0
    ) -> RenderResult:
        return RenderResult(app, application.urn, engine, path, status, reason, tuple(objects), seconds)

    if _has_unknowns(raw_source):
        return result("not-rendered", "inputs unknown until the image digest is known")
    if folder is None:
        return result("not-rendered", REMOTE_SOURCE)
    if not repository.holds(source.get("repoURL")):
        return result("not-rendered", repository.foreign_reason(source.get("repoURL")))
    if _has_unknowns(source) or _has_unknowns(namespace):
        return result("not-rendered", "inputs unknown until the image is built")
    start = time.perf_counter()
    bounds = RenderBounds()
    try:
        if engine == "helm":
            rendered: list[tuple[str | None, dict[str, Any]]] = list(
                render_helm(
                    folder,
                    source.get("helm") or {},
                    release=app,
                    namespace=namespace or "default",
                    project_dir=project_dir,
                    timeout=timeout or HELM_TIMEOUT_SECONDS,
                    bounds=bounds,
                    worker=worker,
                )
            )
        else:
            options = source.get("kustomize") or {}
            limit = timeout or KUSTOMIZE_TIMEOUT_SECONDS
            key = source_key or f"app '{app}' source"
            rendered = render_kustomize(
                folder,
                options,
                project_dir=project_dir,
                timeout=limit,
                source_key=key,
                allow_remote=allow_remote,
                bounds=bounds,
            )
        objects, problems = _objects(rendered, stack, application.urn, namespace, bounds)
    except CannotJudge as exc:
        return result("not-rendered", str(exc), seconds=time.perf_counter() - start)
    except RenderError as exc:
        reason = f"Application '{app}': {engine} render of {path} failed: {exc}"
        return result("error", reason, seconds=time.perf_counter() - start)
    objects = mark_autoscaled(objects)
    seconds = time.perf_counter() - start
    if problems:
        failures = "; ".join(problems)
        reason = f"Application '{app}': {path} renders objects that fail the Kubernetes schema: {failures}"
        return result("error", reason, objects, seconds)
    return result("rendered", "", objects, seconds)


class RenderPool:
    """Renders started as the program registers its Applications (`add`, from any thread), a few at once,
    so that they overlap the rest of the program's run; `results` lists them in the Applications' order."""

    def __init__(
        self,
        project_dir: Path,
        stack: str,
        *,
        timeout: float | None = None,
        source_keys: Mapping[str, str] | None = None,
        repository: Repository = UNKNOWN_REPOSITORY,
        allow_remote: bool = False,
    ) -> None:
        self._project_dir, self._stack, self._timeout = project_dir, stack, timeout
        self._keys = source_keys or {}
        self._repository, self._allow_remote = repository, allow_remote
        self._worker = HelmWorker()
        self._pool = ThreadPoolExecutor(MAX_RENDERS_IN_PARALLEL, thread_name_prefix="render")
        self._started: dict[str, Future[RenderResult]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RenderPool:
        self._worker.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        """Renders not yet started are dropped; running ones end by their own bounds."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._worker.__exit__(*exc)

    def add(self, resource: SimResource) -> None:
        """Start rendering `resource` when it is an Application (each one once)."""
        if resource.type != APPLICATION_TYPE:
            return
        with self._lock:
            if resource.urn not in self._started:
                self._started[resource.urn] = self._pool.submit(
                    render_application, resource, self._project_dir, self._stack, self._timeout,
                    self._keys.get(_app_name(resource)), repository=self._repository,
                    allow_remote=self._allow_remote, worker=self._worker,
                )  # fmt: skip

    def results(self, resources: Sequence[SimResource]) -> list[RenderResult]:
        """Every Application of `resources` rendered (one not yet added starts now), in their order; each
        render is bounded by its engine's timeout."""
        applications = [res for res in resources if res.type == APPLICATION_TYPE]
        for res in applications:
            self.add(res)
        return [self._started[res.urn].result() for res in applications]


def render_all(
    resources: Sequence[SimResource],
    project_dir: Path,
    stack: str,
    *,
    timeout: float | None = None,
    source_keys: Mapping[str, str] | None = None,
    repository: Repository = UNKNOWN_REPOSITORY,
    allow_remote: bool = False,
) -> list[RenderResult]:
    """Render every Application in `resources` (one not rendered is listed, never skipped), a few at once,
    listed in their order; `source_keys` maps an app's name to its `source` config key, which render
    errors name."""
    with RenderPool(
        project_dir, stack, timeout=timeout, source_keys=source_keys, repository=repository,
        allow_remote=allow_remote,
    ) as pool:  # fmt: skip
        return pool.results(resources)


def _app_name(application: SimResource) -> str:
    """The app an Application deploys: its `metadata.name`."""
    return str(application.inputs.get("metadata", {}).get("name") or application.name)
