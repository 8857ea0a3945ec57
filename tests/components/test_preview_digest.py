"""A preview of a changed image, with pulumi-docker's preview answer (the local build's ID).

pulumi-docker (v4.11.2 `provider/image.go`, `if img.SkipPush || isPreview`) answers `repoDigest` with the
local image ID in a preview, and `repository@sha256:...` only after a push. The mocks answer the same
(policy_check/simulate.py ProgramMocks); these runs use configs of the tests' own, never the shipped stacks.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from clients.image_engine import ImageMeasurement
from components.app_release import local_image_id, pushed_digest
from components.argo_application import split_digest
from components.image_size import LOCAL_SOURCE, REGISTRY_SOURCE, ImageSizeProvider
from model.image_ref import is_local_image_id, is_repo_digest
from model.names import APPLICATION_TYPE, DOCKER_IMAGE_TYPE, IMAGE_SIZE_ANNOTATION, IMAGE_SIZE_TYPE
from model.stack_files import read_stack_config
from policy_check.check import evaluate, main, run_check, sim_inputs
from policy_check.promotion import simulate_promoted, upstream_of
from policy_check.report_format import formatted
from policy_check.simulate import UNKNOWN, ProgramMocks, SimResource, Simulation, simulate
from rules.images import image_size_findings
from tests.conftest import TEST_PASSWORD
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.example_project import STACKS
from tests.support.projects import (
    REGISTRY,
    app,
    make_project,
    stack_config,
    write_chart,
    write_policy_config,
    write_stack,
)

LOCAL_ID = "sha256:" + "ab" * 32
PUSHED = f"{REGISTRY}/team/web@sha256:" + "cd" * 32
PIN = f"{REGISTRY}/team/pinned@sha256:" + "ef" * 32
DOCKERFILE = "FROM scratch\nCOPY app.txt /app.txt\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of the test's own: the real program, two built apps and a pinned one, a tiny chart."""
    root = make_project(tmp_path / "project")
    for name in ("web", "api"):
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(DOCKERFILE)
        (root / name / "app.txt").write_text(name)
    write_chart(root)
    return root


def _config(on_preview: bool = True) -> dict[str, Any]:
    return stack_config(
        [app("web", "web"), app("api", "api"), app("pinned", "gone", pin=PIN)], on_preview=on_preview
    )


def _run(project: Path, *, preview: bool, mocks: ProgramMocks | None = None, **kw: Any) -> Simulation:
    return simulate(
        "t", project_dir=project, config=kw.pop("config", _config()), password=TEST_PASSWORD,
        preview=preview, mocks=mocks, **kw,
    )  # fmt: skip


def _one(sim: Simulation, type_: str, app_name: str) -> SimResource:
    found = [r for r in sim.resources if r.type == type_ and r.name.startswith(f"{app_name}-")]
    assert len(found) == 1, [r.urn for r in sim.resources if r.type == type_]
    return found[0]


# -- what the value means ---------------------------------------------------------------------------


def test_a_digest_reference_and_a_local_id_are_told_apart() -> None:
    assert is_repo_digest(PUSHED) and not is_local_image_id(PUSHED)
    assert is_local_image_id(LOCAL_ID) and not is_repo_digest(LOCAL_ID)
    for bad in ("<none>@<none>", "sha256:abc", f"{REGISTRY}/team/web:tag", "", None):
        assert not is_repo_digest(bad) and not is_local_image_id(bad), bad


def test_split_digest_stays_strict() -> None:
    assert split_digest(PUSHED) == (f"{REGISTRY}/team/web", "sha256:" + "cd" * 32)
    for bad in (LOCAL_ID, "<none>@<none>"):
        with pytest.raises(
            ValueError, match=r"expected an image digest reference 'repository@sha256:\.\.\.'"
        ):
            split_digest(bad)


def _serialized(value: str, preview: bool) -> tuple[Any, Any]:
    """(repo_digest, local_image_id) as the SDK puts them on the wire, in a preview or an update."""
    pulumi_mocks.set_mocks(ProgramMocks(), project="gitops-deploy", stack="t", preview=preview)

    async def wire() -> Any:
        raw = pulumi.Output.from_input(value)
        props = {"digest": raw.apply(pushed_digest), "local": raw.apply(local_image_id)}
        return json_format.MessageToDict(await rpc.serialize_properties(props, {}))

    wire_props = asyncio.new_event_loop().run_until_complete(wire())
    return wire_props["digest"], wire_props["local"]


def test_in_a_preview_a_local_id_is_a_pending_digest_that_serializes_as_unknown() -> None:
    assert _serialized(LOCAL_ID, preview=True) == (rpc.UNKNOWN, LOCAL_ID)
    assert _serialized(PUSHED, preview=True) == (PUSHED, "")


def test_outside_a_preview_the_value_passes_through_to_the_strict_split() -> None:
    """In `up`, pulumi-docker's `<none>@<none>` (no digest found after the push) reaches split_digest."""
    assert _serialized(PUSHED, preview=False) == (PUSHED, "")
    assert _serialized("<none>@<none>", preview=False) == ("<none>@<none>", "")


# -- the program in preview, with pulumi-docker's answers --------------------------------------------


def _assert_only_the_digest_is_pending(application: SimResource) -> None:
    source = application.raw_inputs["spec"]["source"]
    assert source != UNKNOWN, f"{application.urn}: the source itself is known"
    values = source["helm"]["valuesObject"]
    assert values["image"]["digest"] == UNKNOWN, f"{application.urn}: the digest is pending"
    assert values["image"]["repository"] == f"{REGISTRY}/team/{application.inputs['metadata']['name']}"
    assert values["replicaCount"] == 3 and source["path"] == "chart", application.urn


def test_preview_of_built_apps_shows_pending_digests_and_does_not_fail(project: Path) -> None:
    sim = _run(project, preview=True)
    for name in ("web", "api"):
        image = _one(sim, DOCKER_IMAGE_TYPE, name)
        local = image.outputs["repoDigest"]
        assert is_local_image_id(local), f"{image.urn}: pulumi-docker answers the local ID in a preview"
        size = _one(sim, IMAGE_SIZE_TYPE, name)
        assert size.inputs["image"] == local, f"{size.urn}: ImageSize gets the local ID to measure"
        assert size.outputs["size_bytes"] == UNKNOWN, f"{size.urn}: nothing measured it here"
        application = _one(sim, APPLICATION_TYPE, name)
        # Only the digest is pending (and the size): the chart, its values and the replica count the
        # policies judge stay known.
        _assert_only_the_digest_is_pending(application)
        assert application.raw_inputs["metadata"]["annotations"][IMAGE_SIZE_ANNOTATION] == UNKNOWN
    pinned = _one(sim, APPLICATION_TYPE, "pinned")
    assert pinned.inputs["spec"]["source"]["helm"]["valuesObject"]["image"]["digest"] == PIN.split("@")[1]
    assert _one(sim, IMAGE_SIZE_TYPE, "pinned").inputs["image"] == PIN
    assert not [r for r in sim.resources if r.type == DOCKER_IMAGE_TYPE and r.name.startswith("pinned")]


def test_preview_without_build_on_preview_leaves_the_digest_unknown(project: Path) -> None:
    sim = _run(project, preview=True, config=_config(on_preview=False))
    image = _one(sim, DOCKER_IMAGE_TYPE, "web")
    assert "repoDigest" not in image.outputs, "pulumi-docker returns the inputs alone (canPreview false)"
    assert _one(sim, IMAGE_SIZE_TYPE, "web").raw_inputs["image"] == UNKNOWN
    _assert_only_the_digest_is_pending(_one(sim, APPLICATION_TYPE, "web"))


def test_preview_with_a_local_measurement_makes_the_size_known(project: Path) -> None:
    """As ImageSize.check does in a real preview: the local build's size becomes the preview's output."""
    sim = _run(project, preview=True)
    name = _one(sim, DOCKER_IMAGE_TYPE, "web").inputs["imageName"]
    measured = ImageMeasurement(LOCAL_ID, 4_321_000, True, 9_000_000, 1_500, 2)
    sim = _run(project, preview=True, mocks=ProgramMocks(local_images={name: measured}))
    assert _one(sim, DOCKER_IMAGE_TYPE, "web").outputs["repoDigest"] == LOCAL_ID
    size = _one(sim, IMAGE_SIZE_TYPE, "web")
    assert size.outputs["size_bytes"] == 4_321_000
    assert size.outputs["size_source"].startswith(f"{LOCAL_SOURCE}: preview build sha256:abab")
    application = _one(sim, APPLICATION_TYPE, "web")
    assert application.inputs["metadata"]["annotations"][IMAGE_SIZE_ANNOTATION] == "4321000"
    _assert_only_the_digest_is_pending(application)


def test_up_pushes_and_the_application_carries_the_pushed_digest(project: Path) -> None:
    sim = _run(project, preview=False)
    pushed = _one(sim, DOCKER_IMAGE_TYPE, "web").outputs["repoDigest"]
    assert is_repo_digest(pushed)
    values = _one(sim, APPLICATION_TYPE, "web").inputs["spec"]["source"]["helm"]["valuesObject"]
    assert f"{values['image']['repository']}@{values['image']['digest']}" == pushed
    assert sim.exports["apps"]["web"]["imageDigest"] == pushed


# -- ImageSize as the engine calls it, without an engine to measure with ----------------------------


@pytest.fixture(scope="module")
def size_server() -> Any:
    import os

    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/gitops-test-docker.sock"
    try:
        with DynamicProviderServer(ImageSizeProvider()) as server:
            yield server
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved


def _size_inputs(image: str) -> dict[str, Any]:
    return {
        "image": image, "server": REGISTRY, "username": "ci", "password": TEST_PASSWORD,
        "platform": "linux/amd64", "insecure": False, "timeout_seconds": 10, "provider_version": "1",
    }  # fmt: skip


@pytest.mark.grpc
def test_image_size_check_accepts_a_local_id_and_says_why_it_has_no_size(
    size_server: DynamicProviderServer,
) -> None:
    result = size_server.check(_size_inputs(LOCAL_ID))
    assert result.failures == []
    assert result.inputs.get("size_bytes") is None, "unknown in the preview, not a failure"
    assert result.inputs["size_source"] == (
        "not measured in this preview: no Docker Engine reachable at "
        "unix:///nonexistent/gitops-test-docker.sock (No such file or directory)"
    )
    assert size_server.diff({**_size_inputs(PUSHED), "size_bytes": 5.0}, result.inputs).has_changes


@pytest.mark.grpc
def test_image_size_create_refuses_a_local_id(size_server: DynamicProviderServer) -> None:
    import grpc

    with pytest.raises(grpc.RpcError) as info:
        size_server.create(_size_inputs(LOCAL_ID))
    assert f"image size of {LOCAL_ID}: a local image ID, not a pushed digest" in info.value.details()


def test_the_policy_says_where_the_figure_comes_from() -> None:
    local = {"image": LOCAL_ID, "size_bytes": 6e6, "size_source": f"{LOCAL_SOURCE}: preview build"}
    [message] = image_size_findings(local, "web-image-size", 5_000_000)
    assert "image size 6,000,000 bytes (size_bytes measured locally, before the push;" in message
    registry = {**local, "size_source": REGISTRY_SOURCE}
    assert "(registry size_bytes)" in image_size_findings(registry, "web-image-size", 5_000_000)[0]


# -- the CLI-free check judges the release `up` declares ---------------------------------------------


@pytest.mark.grpc
@pytest.mark.render
def test_the_check_renders_with_the_pushed_digest_and_cannot_judge_the_size_without_build(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy_config(project / "policy.json")
    report = run_check("t", project_dir=project, config=_config(), config_file=policy)
    assert [r.status for r in report.renders] == ["rendered"] * 3, [r.reason for r in report.renders]
    assert report.exit_code == 0 and report.mandatory == [], formatted(report, "table")
    assert [(i.app, i.status, i.detail) for i in report.images] == [
        ("api", "not-measured", "--build not given"),
        ("web", "not-measured", "--build not given"),
    ]
    unknown = {(d.policy, d.urn.rsplit("::", 1)[-1]) for d in report.diagnostics if d.cant_judge}
    assert ("image-size-limit", "web-argocd-application") in unknown
    words = " ".join(formatted(report, "table").split())  # the table wraps at 100 columns
    assert "Run with --build to build each image with the local Docker Engine" in words


@pytest.mark.grpc
def test_the_check_without_an_engine_cannot_judge_yet_and_says_why(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(project, "t", _config())
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    policy = write_policy_config(project / "policy.json")
    argv = ["--stack", "t", "--project-dir", str(project), "--policy-config", str(policy)]
    code = main([*argv, "--build", "--no-render"])
    out = capsys.readouterr().out
    assert code == 0, out
    words = " ".join(out.split())  # the table wraps at 100 columns
    reason = f"no Docker Engine reachable at unix://{tmp_path}/no-engine.sock (No such file or directory)"
    assert "web (registry.example.com/team/web:" in words
    assert f", web/Dockerfile): not measured: {reason}; image-size-limit can't judge it yet" in words
    assert "image-size-limit: Application 'argocd/web': " in words
    assert "0 build error(s), 0 smoke failure(s)" in words.rsplit("PASS: ", 1)[-1], out


@pytest.mark.grpc
def test_a_preview_with_pending_digests_still_judges_the_replicas(project: Path) -> None:
    """The PR preview's Application keeps its replica count known, so minimum-replicas gives a verdict."""
    apps = [app("web", "web", replicas=1), app("api", "api", replicas=3)]
    sim = _run(project, preview=True, config=stack_config(apps))
    analyze, whole = sim_inputs(sim.resources)
    report = evaluate(
        "t", analyze, whole, config_file=write_policy_config(project / "policy.json", min_replicas=2)
    )
    replicas = [d for d in report.diagnostics if d.policy == "minimum-replicas"]
    assert [(d.urn.rsplit("::", 1)[-1], d.cant_judge) for d in replicas] == [
        ("web-argocd-application", False)
    ]


# -- the example stacks themselves, previewed as the preview workflow previews them -------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_example_stack_previews_with_pending_or_promoted_digests(
    example_project: Path, stack: str
) -> None:
    """dev builds: each image is the local build (pending digest); staging and prod promote the digests
    their upstream stack exported, known already in the preview (deploy.yml deploys upstream first)."""
    sim, _ = simulate_promoted(stack, password=TEST_PASSWORD, project_dir=example_project, preview=True)
    config = read_stack_config(stack, example_project)
    upstream = upstream_of(config)
    applications = sim.by_type(APPLICATION_TYPE)
    assert sorted(a.inputs["metadata"]["name"] for a in applications) == sorted(
        app["name"] for app in config["gitops-deploy:apps"]
    ), f"stack {stack}: one Application per app"
    images = {r.inputs["imageName"].rsplit(":", 1)[0]: r for r in sim.by_type(DOCKER_IMAGE_TYPE)}
    if upstream is None:
        assert images, f"stack {stack} builds"
        for image in images.values():
            assert is_local_image_id(image.outputs["repoDigest"]), f"{image.urn}: the preview's local build"
        for application in applications:
            source = application.raw_inputs["spec"]["source"]
            digest = source["helm"]["valuesObject"]["image"]["digest"]
            assert digest == UNKNOWN, f"{application.urn}: the digest is pending until the push"
        return
    assert not images, f"stack {stack} promotes from {upstream}: nothing is built in its preview"
    upstream_sim, _ = simulate_promoted(upstream, password=TEST_PASSWORD, project_dir=example_project)
    for application in applications:
        name = application.inputs["metadata"]["name"]
        digest = upstream_sim.exports["apps"][name]["imageDigest"].split("@", 1)[1]
        assert is_repo_digest(f"repo@{digest}")
        assert digest in json.dumps(application.inputs["spec"]["source"]), (
            f"{application.urn}: deploys the digest {upstream} exported, known in the preview"
        )
