"""The policy pack over the real Analyze/AnalyzeStack gRPC protocol, started as the Pulumi CLI starts it."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest

from model.stack_files import PROJECT_DIR
from policy_check.analyzer_client import PACK_DIR, Diagnostic, PolicyInput, PolicyPackServer, pack_python
from tests.support.policy_resources import (
    DIGEST,
    REPO,
    UNKNOWN,
    app_project,
    app_urn,
    application,
    health_check,
    hpa,
    image_size,
    pull_secret,
    workload,
)


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackServer]:
    """One pack with the default thresholds, shared by the module."""
    with PolicyPackServer(stack="prod") as server:
        yield server


@pytest.fixture(scope="module")
def dev_pack() -> Iterator[PolicyPackServer]:
    """A pack configured from policies/config.dev.json plus an image-size override."""
    from policy_check.analyzer_client import PACK_DIR

    with PolicyPackServer(
        config_file=PACK_DIR / "config.dev.json", config={"image-size-limit": {"maxBytes": 500}}
    ) as server:
        yield server


def _of(diags: list[Diagnostic], policy: str) -> list[Diagnostic]:
    return [d for d in diags if d.policy == policy and not d.cant_judge]


def _no_floats(diags: list[Diagnostic]) -> None:
    for d in diags:
        assert ".0 " not in d.detail and not d.detail.endswith(".0"), d.detail


@pytest.mark.grpc
def test_the_pack_reports_its_policies_and_levels(pack: PolicyPackServer) -> None:
    assert pack.levels == {
        "image-size-limit": "mandatory",
        "image-size-registry": "mandatory",
        "minimum-replicas": "mandatory",
        "minimum-replicas-rendered": "mandatory",
        "workload-uses-built-image": "mandatory",
        "image-pinned-by-digest": "advisory",
        "argocd-sync-retry": "advisory",
        "argocd-project-scoped": "advisory",
        "health-check-required": "advisory",
        "pull-secret-type": "advisory",
        "container-resources": "advisory",
    }
    assert pack.config["minimum-replicas"] == ("mandatory", {"minReplicas": 3})
    assert pack.config["image-size-limit"] == ("mandatory", {"maxBytes": 1_000_000_000})


@pytest.mark.grpc
@pytest.mark.parametrize(("replicas", "fails"), [(1, True), (2, True), (3, False), (4, False)])
@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_workload_replicas(pack: PolicyPackServer, kind: str, replicas: int, fails: bool) -> None:
    res = workload(kind, replicas=replicas)
    found = _of(pack.analyze(res), "minimum-replicas")
    assert bool(found) == fails, found
    if fails:
        d = found[0]
        assert d.level == "mandatory" and d.urn == res.urn
        assert f"{kind} 'web-dev/web'" in d.detail
        assert f"spec.replicas is {replicas}, under minReplicas 3" in d.detail
        assert "Fix:" in d.detail
        _no_floats(found)


@pytest.mark.grpc
def test_missing_replicas_means_one(pack: PolicyPackServer) -> None:
    found = _of(pack.analyze(workload(replicas=None)), "minimum-replicas")
    assert len(found) == 1 and "missing, Kubernetes runs 1" in found[0].detail


@pytest.mark.grpc
@pytest.mark.parametrize(("min_replicas", "fails"), [(2, True), (3, False), (None, True)])
def test_hpa_min_replicas(pack: PolicyPackServer, min_replicas: int | None, fails: bool) -> None:
    found = _of(pack.analyze(hpa(min_replicas)), "minimum-replicas")
    assert bool(found) == fails
    if fails:
        assert "HorizontalPodAutoscaler 'web-dev/web'" in found[0].detail


@pytest.mark.grpc
@pytest.mark.parametrize(("replicas", "fails"), [(1, True), (2, True), (3, False)])
@pytest.mark.parametrize("engine", ["helm", "kustomize"])
def test_application_replicas(pack: PolicyPackServer, engine: str, replicas: int, fails: bool) -> None:
    found = _of(pack.analyze(application(engine=engine, replicas=replicas)), "minimum-replicas")
    assert bool(found) == fails, found
    if fails:
        where = "helm.valuesObject.replicaCount" if engine == "helm" else "kustomize.replicas[0].count (web)"
        assert f"{where} is {replicas}, under minReplicas 3" in found[0].detail
        _no_floats(found)


@pytest.mark.grpc
def test_helm_parameter_replica_count(pack: PolicyPackServer) -> None:
    res = application()
    res.props["spec"]["source"]["helm"]["parameters"] = [{"name": "replicaCount", "value": "2"}]
    found = _of(pack.analyze(res), "minimum-replicas")
    assert len(found) == 1 and "helm.parameters[0] replicaCount is 2, under minReplicas 3" in found[0].detail


@pytest.mark.grpc
@pytest.mark.parametrize(
    ("size", "fails"),
    [("999999999", False), ("1000000000", True), ("1000000001", True), ("2500000000", True)],
)
def test_image_size_annotation(pack: PolicyPackServer, size: str, fails: bool) -> None:
    found = _of(pack.analyze(application(size=size)), "image-size-limit")
    assert bool(found) == fails
    if fails:
        assert f"image size {int(size):,} bytes" in found[0].detail
        assert "limit of 1,000,000,000 bytes" in found[0].detail
        assert found[0].level == "mandatory"


@pytest.mark.grpc
def test_unknown_size_is_neither_pass_nor_fail(pack: PolicyPackServer) -> None:
    diags = [d for d in pack.analyze(application(size=UNKNOWN)) if d.policy == "image-size-limit"]
    assert len(diags) == 1 and diags[0].cant_judge
    assert diags[0].level == "advisory" and "can't be known during preview" in diags[0].message


@pytest.mark.grpc
@pytest.mark.parametrize("size", ["1GB", "", "-5", "12.5"])
def test_malformed_size_annotation_is_a_violation(pack: PolicyPackServer, size: str) -> None:
    found = _of(pack.analyze(application(size=size)), "image-size-limit")
    assert (
        len(found) == 1 and "not a whole number of bytes" in found[0].detail and repr(size) in found[0].detail
    )


@pytest.mark.grpc
def test_missing_size_annotation(pack: PolicyPackServer) -> None:
    assert (
        "annotation gitops-deploy/image-size-bytes is missing"
        in _of(pack.analyze(application(size=None)), "image-size-limit")[0].detail
    )
    assert _of(pack.analyze(application(size=None, managed=False)), "image-size-limit") == []


@pytest.mark.grpc
@pytest.mark.parametrize(
    ("size", "fails"), [(999_999_999, False), (1_000_000_000, True), (1_000_000_001, True), ("big", True)]
)
def test_image_size_registry_output(pack: PolicyPackServer, size: object, fails: bool) -> None:
    res = image_size(size)
    found = _of(pack.analyze_stack([res]), "image-size-registry")
    assert bool(found) == fails
    if fails:
        assert found[0].urn == res.urn and "ImageSize 'web-image-size'" in found[0].detail
        _no_floats(found)


@pytest.mark.grpc
def test_image_size_registry_judges_known_and_defers_unknown(pack: PolicyPackServer) -> None:
    diags = pack.analyze_stack([image_size(UNKNOWN, "a"), image_size(2_000_000_000, "b")])
    found = [d for d in diags if d.policy == "image-size-registry"]
    assert [d.cant_judge for d in found] == [False, True]
    assert "b-image-size" in found[0].urn


@pytest.mark.grpc
@pytest.mark.parametrize(
    "props",
    [
        {},
        {"spec": "oops"},
        {"spec": {"replicas": "three"}, "metadata": "x"},
        {"metadata": {"annotations": "nope", "labels": {"app.kubernetes.io/managed-by": "gitops-deploy"}}},
        {
            "spec": {
                "source": {"helm": {"valuesObject": [], "parameters": "x"}, "kustomize": {"replicas": [1]}}
            }
        },
        {"spec": {"syncPolicy": {"automated": {}, "retry": {"limit": "x", "backoff": 3}}}},
        {"spec": UNKNOWN, "metadata": UNKNOWN, "size_bytes": UNKNOWN, "type": UNKNOWN},
        {"spec": {"replicas": UNKNOWN, "minReplicas": "2", "source": {"helm": {"valuesObject": UNKNOWN}}}},
        {"spec": {"sourceRepos": "*", "destinations": [None, 3, {"server": None}], "template": []}},
        {"size_bytes": None, "image": 5},
    ],
)
@pytest.mark.parametrize(
    "type_",
    [
        "kubernetes:apps/v1:Deployment",
        "kubernetes:argoproj.io/v1alpha1:Application",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:core/v1:Secret",
        "kubernetes:argoproj.io/v1alpha1:AppProject",
        "kubernetes:apps/v1:StatefulSet",
        "pulumi-python:dynamic/image:ImageSize",
        "pulumi-python:dynamic/health:HealthCheck",
    ],
)
def test_malformed_props_never_crash_the_pack(pack: PolicyPackServer, type_: str, props: dict) -> None:
    res = PolicyInput("urn:pulumi:dev::gitops-deploy::" + type_ + "::bad", type_, "bad", props)
    pack.analyze(res)  # a crash would be a gRPC error
    pack.analyze_stack([res])


@pytest.mark.grpc
@pytest.mark.parametrize(
    ("app_props", "child_props"),
    [
        ({}, {}),
        ({"spec": {"source": {"helm": {"valuesObject": {"image": "x"}, "parameters": [3]}}}}, {"spec": 1}),
        ({"spec": {"source": {"kustomize": {"images": [None, 7, "=@"]}}}}, {"spec": {"template": []}}),
        (application().props, {"spec": {"template": {"spec": {"containers": ["x", {"image": None}]}}}}),
        (application().props, {"spec": UNKNOWN}),
        ({"spec": UNKNOWN}, workload().props),
    ],
)
def test_malformed_rendered_objects_never_crash_the_pack(
    pack: PolicyPackServer, app_props: dict, child_props: dict
) -> None:
    app = PolicyInput(app_urn(), "kubernetes:argoproj.io/v1alpha1:Application", "web", app_props)
    child = workload(parent=app.urn)
    child = PolicyInput(child.urn, child.type, child.name, child_props, parent=app.urn)
    pack.analyze(child)  # a crash would be a gRPC error
    diags = pack.analyze_stack([app, child])
    assert all(d.cant_judge or d.urn for d in diags)


@pytest.mark.grpc
def test_config_override_of_thresholds(dev_pack: PolicyPackServer) -> None:
    assert dev_pack.config["minimum-replicas"][1] == {"minReplicas": 1}
    assert _of(dev_pack.analyze(workload(replicas=1)), "minimum-replicas") == []
    found = _of(dev_pack.analyze(application(size="600", replicas=1)), "image-size-limit")
    assert (
        len(found) == 1
        and "image size 600 bytes" in found[0].detail
        and "limit of 500 bytes" in found[0].detail
    )


@pytest.mark.grpc
def test_latest_tags(pack: PolicyPackServer) -> None:
    helm = application()
    helm.props["spec"]["source"]["helm"]["valuesObject"]["image"] = {"repository": REPO, "tag": "latest"}
    assert "'latest'" in _of(pack.analyze(helm), "image-pinned-by-digest")[0].detail
    tag_only = application()
    tag_only.props["spec"]["source"]["helm"]["valuesObject"]["image"] = {"repository": REPO, "tag": "1.2"}
    assert "not pinned by digest" in _of(pack.analyze(tag_only), "image-pinned-by-digest")[0].detail
    kustomize = application(engine="kustomize")
    kustomize.props["spec"]["source"]["kustomize"]["images"] = [f"web={REPO}:latest"]
    found = _of(pack.analyze(kustomize), "image-pinned-by-digest")
    assert found[0].level == "advisory" and "latest" in found[0].detail
    assert _of(pack.analyze(application()), "image-pinned-by-digest") == []
    assert _of(pack.analyze(application(engine="kustomize")), "image-pinned-by-digest") == []


@pytest.mark.grpc
def test_application_without_health_check(pack: PolicyPackServer) -> None:
    app = application()
    found = _of(pack.analyze_stack([app]), "health-check-required")
    assert len(found) == 1 and found[0].urn == app.urn and found[0].level == "advisory"
    assert _of(pack.analyze_stack([app, health_check((app.urn,))]), "health-check-required") == []
    assert _of(pack.analyze_stack([app, health_check(("urn:other",))]), "health-check-required")


@pytest.mark.grpc
def test_workload_uses_built_image(pack: PolicyPackServer) -> None:
    for engine in ("helm", "kustomize"):
        app = application(engine=engine)
        good = workload(parent=app.urn)
        assert _of(pack.analyze_stack([app, good]), "workload-uses-built-image") == []
        stale = workload(parent=app.urn, image=f"{REPO}:old")
        found = _of(pack.analyze_stack([app, stale]), "workload-uses-built-image")
        assert {d.urn for d in found} == {stale.urn, app.urn}
        assert all(d.level == "mandatory" for d in found)
        assert f"{REPO}@{DIGEST}" in found[0].detail


@pytest.mark.grpc
def test_workload_uses_built_image_needs_rendered_objects(pack: PolicyPackServer) -> None:
    app = application()
    assert _of(pack.analyze_stack([app, workload()]), "workload-uses-built-image") == []


@pytest.mark.grpc
def test_argocd_project_scoped(pack: PolicyPackServer) -> None:
    found = _of(pack.analyze(application(project="default")), "argocd-project-scoped")
    assert len(found) == 1 and "spec.project is 'default'" in found[0].detail and found[0].level == "advisory"
    assert _of(pack.analyze(application()), "argocd-project-scoped") == []
    open_project = app_project(["*"], [{"server": "*", "namespace": "web"}])
    found = _of(pack.analyze(open_project), "argocd-project-scoped")
    assert (
        len(found) == 2
        and "sourceRepos[0]" in found[0].detail
        and "destinations[0].server" in found[1].detail
    )
    fenced = app_project(
        ["https://github.com/example-org/gitops-deploy.git"], [{"name": "prod", "namespace": "web"}]
    )
    assert _of(pack.analyze(fenced), "argocd-project-scoped") == []


@pytest.mark.grpc
def test_argocd_sync_retry(pack: PolicyPackServer) -> None:
    assert _of(pack.analyze(application()), "argocd-sync-retry") == []
    app = application()
    app.props["spec"]["syncPolicy"]["retry"] = {"limit": 0}
    found = _of(pack.analyze(app), "argocd-sync-retry")
    assert len(found) == 2 and "retry.limit is 0; it must be at least 1" in found[0].detail


@pytest.mark.grpc
def test_pull_secret_type(pack: PolicyPackServer) -> None:
    assert _of(pack.analyze(pull_secret()), "pull-secret-type") == []
    found = _of(pack.analyze(pull_secret("Opaque")), "pull-secret-type")
    assert len(found) == 1 and "type is 'Opaque'" in found[0].detail
    assert "c2VjcmV0" not in found[0].message


@pytest.mark.grpc
def test_container_resources(pack: PolicyPackServer) -> None:
    assert _of(pack.analyze(workload()), "container-resources") == []
    found = _of(pack.analyze(workload(resources={})), "container-resources")
    assert len(found) == 1 and "resources.requests.cpu" in found[0].detail and found[0].level == "advisory"
    assert app_urn() not in found[0].urn


# -- the pack `pulumi policy publish` uploads -----------------------------------------------------


def publish_archive(pack_dir: Path) -> bytes:
    """The pack's .tgz as `pulumi policy publish` builds it: every regular file under `package/`, symlinks
    followed, .gitignore'd names left out (docs/engine-rules.md#policy-pack-publish-archive)."""
    ignored = [p.strip("/") for p in (PROJECT_DIR / ".gitignore").read_text(encoding="utf-8").split()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder, dirs, files in os.walk(pack_dir, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not any(fnmatch(d, p) for p in ignored))
            for name in sorted(files):
                path = Path(folder, name)
                if path.is_file() and not any(fnmatch(name, p) for p in ignored):
                    tar.add(path.resolve(), f"package/{path.relative_to(pack_dir).as_posix()}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published archive unpacked as `pulumi policy install` does: `package/` is the pack."""
    root = tmp_path_factory.mktemp("published")
    with tarfile.open(fileobj=io.BytesIO(publish_archive(PACK_DIR)), mode="r:gz") as tar:
        assert all(m.isfile() for m in tar.getmembers()), "the archive holds only regular files"
        tar.extractall(root, filter="data")
    return root / "package"


def test_the_published_pack_carries_the_shared_names(published: Path) -> None:
    names = published / "rules" / "names.py"
    assert (PACK_DIR / "rules" / "names.py").resolve() == PROJECT_DIR / "model" / "names.py"
    assert not names.is_symlink() and names.read_bytes() == (PROJECT_DIR / "model/names.py").read_bytes()
    assert not list(published.rglob("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import importlib.util as u; print(u.find_spec('model'), u.find_spec('rules.names') is not None)"
    found = subprocess.run(
        [pack_python(published), "-c", probe],
        cwd=published,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.stdout.split() == ["None", "True"], found.stderr  # the pack sees only its own folder


def _fails_every_policy() -> list[PolicyInput]:
    app = application(size="2000000000", replicas=1, project="default")
    app.props["spec"]["syncPolicy"]["retry"] = {"limit": 0}
    app.props["spec"]["source"]["helm"]["valuesObject"]["image"] = {"repository": REPO, "tag": "latest"}
    return [
        app,
        workload(replicas=1, resources={}),
        workload("StatefulSet", "db", parent=app.urn, replicas=None, image=f"{REPO}:old"),
        hpa(2),
        image_size(2_000_000_000),
        pull_secret("Opaque"),
        app_project(["*"], [{"server": "*", "namespace": "web"}]),
    ]


def _verdicts(server: PolicyPackServer, resources: list[PolicyInput]) -> list[tuple[str, str, str, str]]:
    found = [d for r in resources for d in server.analyze(r)] + server.analyze_stack(resources)
    return sorted((d.policy, d.urn, d.level, d.message) for d in found)


@pytest.mark.grpc
def test_the_published_pack_gives_the_same_verdicts(
    pack: PolicyPackServer, published: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    resources = _fails_every_policy()
    with PolicyPackServer(published, stack=pack.stack) as copy:
        assert copy.levels == pack.levels
        verdicts = _verdicts(copy, resources)
    assert {policy for policy, *_ in verdicts} == set(pack.levels)
    assert verdicts == _verdicts(pack, resources)
