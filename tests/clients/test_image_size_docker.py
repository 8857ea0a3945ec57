"""The image size judged on the PR, with a real Docker Engine and small images.

One private dockerd for the module (tests/support/docker_engine.py), DOCKER_HOST pointing at it; the
registry is Debian's docker-registry (tests/support/registry.py). Limits are set low in the tests' own
policy config, and the projects, stacks and Dockerfiles are the tests' own.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from clients.image_engine import BuildFailed, BuildSpec, build_image, gzip_upper_bound, measure_image
from components.image_size import LOCAL_SOURCE, REGISTRY_SOURCE, ImageSizeProvider
from components.image_size import measure as registry_measure
from policy_check.check import main
from tests.support.docker_engine import BUSYBOX_IMAGE, LocalDockerEngine, import_busybox, write_context
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.projects import app, make_project, stack_config, write_policy_config, write_stack
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.docker

LIMIT = 5_000_000
FIXTURES = Path(__file__).parents[1] / "fixtures"
PASSWORD = "Dkr-pw-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalDockerEngine]:
    """One private engine for the module, with busybox imported as a base image with a shell."""
    with LocalDockerEngine() as started, pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKER_HOST", started.host)
        with started.client() as client:
            import_busybox(client)
        yield started


@pytest.fixture
def client(engine: LocalDockerEngine) -> Iterator[docker.DockerClient]:
    with engine.client() as c:
        yield c


def _scratch(directory: Path, payload: bytes) -> Path:
    return write_context(directory, "FROM scratch\nCOPY payload /payload\n", {"payload": payload})


def _check(
    project: Path, policy: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    """The check's JSON report (docs/policy-check.md has its fields)."""
    code = main(
        [
            "--stack",
            "t",
            "--project-dir",
            str(project),
            "--policy-config",
            str(policy),
            "--format",
            "json",
            "--no-smoke",  # these images have no command to run: tests/clients/test_smoke_run_docker.py
            *extra,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def _image(report: dict[str, Any], name: str) -> dict[str, Any]:
    [image] = [i for i in report["images"] if i["app"] == name]
    assert image["image"].startswith(f"registry.example.com/team/{name}:"), image
    return image


def _figure(detail: str) -> int:
    found = re.search(r"(?:at most )?([\d,]+) bytes", detail)
    assert found, detail
    return int(found.group(1).replace(",", ""))


# -- the CLI-free check with --build ----------------------------------------------------------------


def test_just_under_and_over_the_limit(
    engine: LocalDockerEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "project")
    _scratch(project / "small", secrets.token_bytes(4_900_000))  # random: gzip cannot shrink it
    _scratch(project / "big", secrets.token_bytes(6_000_000))
    _scratch(project / "zeros", bytes(6_000_000))  # over the limit raw, far under it compressed
    write_stack(project, "t", stack_config([app("small", "small"), app("big", "big"), app("zeros", "zeros")]))
    policy = write_policy_config(tmp_path / "policy.json", max_bytes=LIMIT)

    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, report
    # One root cause, seen on the Application's size annotation and on the ImageSize: one finding.
    [finding] = [f for f in report["findings"] if f["level"] == "mandatory"]
    assert finding["app"] == "big" and finding["level"] == "mandatory"
    assert finding["policies"] == ["image-size-limit", "image-size-registry"]
    assert sorted(p["resource"].split(" ")[0] for p in finding["places"]) == ["Application", "ImageSize"]
    assert finding["change"]["key"] == "gitops-deploy:apps[1] (big).image", finding["change"]
    assert "image-size-limit.maxBytes" in finding["change"]["alternative"]
    details = " ".join(p["detail"] for p in finding["places"])
    assert "size_bytes measured locally, before the push" in details

    big, small, zeros = (_image(report, n) for n in ("big", "small", "zeros"))
    assert "bytes compressed (gzip of each of the 1 layer tar(s)" in big["detail"]
    assert 6_000_000 < big["sizeBytes"] < gzip_upper_bound(6_010_000), big
    assert (
        f"image size {big['sizeBytes']:,} bytes" in details and "at or over the limit of 5,000,000" in details
    )
    assert "at most " in small["detail"], small
    assert "under the limit of 5,000,000 bytes, so nothing was compressed" in small["detail"]
    assert 4_900_000 < _figure(small["detail"]) < LIMIT, small
    assert "bytes compressed" in zeros["detail"] and zeros["sizeBytes"] < 100_000, zeros
    assert report["verdict"] == "fail" and report["counts"]["buildErrors"] == 0

    write_stack(project, "t", stack_config([app("small", "small")]))
    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 0, report
    assert report["verdict"] == "pass" and report["counts"]["mandatory"] == 0, report
    assert report["cantJudge"] == [], "judged: a pass"
    assert not [f for f in report["findings"] if "image-size-limit" in f["policies"]]


def test_build_args_and_a_dockerfile_outside_the_context_reach_the_build(
    engine: LocalDockerEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "project")
    (project / "docker").mkdir()
    (project / "docker" / "sized.Dockerfile").write_text(
        f"FROM {BUSYBOX_IMAGE}\nARG SIZE_KB=1\nRUN dd if=/dev/urandom of=/blob bs=1024 count=$SIZE_KB\n"
    )
    write_context(project / "ctx", "FROM scratch\n")  # the context's own Dockerfile is not the one used
    config = app("sized", "ctx", build_args={"SIZE_KB": "6000"})
    config["image"]["dockerfile"] = "docker/sized.Dockerfile"
    write_stack(project, "t", stack_config([config]))
    policy = write_policy_config(tmp_path / "policy.json", max_bytes=LIMIT)

    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, report
    sized = _image(report, "sized")
    assert sized["dockerfile"] == "docker/sized.Dockerfile" and sized["sizeBytes"] > 6_144_000, sized


def test_a_failing_run_step_names_the_app_the_dockerfile_and_the_step(
    engine: LocalDockerEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "project")
    write_context(
        project / "broken",
        f"FROM {BUSYBOX_IMAGE}\nRUN echo preparing > /prepared\nRUN echo compiling && exit 3\n",
    )
    _scratch(project / "fine", b"fine")
    write_stack(project, "t", stack_config([app("broken", "broken"), app("fine", "fine")]))
    policy = write_policy_config(tmp_path / "policy.json", max_bytes=LIMIT)

    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, report
    broken = _image(report, "broken")
    assert (broken["status"], broken["dockerfile"]) == ("error", "broken/Dockerfile")
    assert broken["detail"] == (
        "app 'broken': docker build of broken/Dockerfile failed at Step 3/3 : RUN echo compiling && exit 3: "
        "The command '/bin/sh -c echo compiling && exit 3' returned a non-zero code: 3 "
        "| last output: compiling"
    ), broken
    assert _image(report, "fine")["sizeBytes"], "the other app is still built and judged"
    assert report["verdict"] == "fail" and report["counts"]["buildErrors"] == 1


def test_a_dependency_missing_at_build_time_fails_the_build_naming_it(
    engine: LocalDockerEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "project")
    shutil.copytree(FIXTURES / "missing_dependency" / "build_time", project / "app")
    write_stack(project, "t", stack_config([app("app", "app")]))
    policy = write_policy_config(tmp_path / "policy.json", max_bytes=LIMIT)

    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, report
    built = _image(report, "app")
    assert built["status"] == "error", built
    assert built["detail"].endswith("| last output: ERROR: No matching distribution found for flask"), built
    assert report["verdict"] == "fail" and report["counts"]["buildErrors"] == 1


def test_a_dockerfile_that_does_not_parse_fails_before_its_first_step(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "bad", "FROM scratch\nNOTANINSTRUCTION x\n")
    with pytest.raises(BuildFailed) as info:
        build_image(client, BuildSpec(context, context / "Dockerfile"))
    text = info.value.describe("web", "bad/Dockerfile")
    assert text.startswith("app 'web': docker build of bad/Dockerfile failed before its first step: ")
    assert "notaninstruction" in text.lower()


def test_the_check_measures_the_context_pulumi_docker_sends(
    engine: LocalDockerEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`<Dockerfile>.dockerignore` wins over `<context>/.dockerignore`, which alone the docker SDK reads."""
    project = make_project(tmp_path / "project")
    copy_all = "FROM scratch\nCOPY . /ctx/\n"
    # lean: the SDK would send big.bin (its .dockerignore keeps it); pulumi-docker leaves it out.
    lean = write_context(project / "lean", copy_all, {"big.bin": secrets.token_bytes(6_000_000)})
    (lean / ".dockerignore").write_text("*.tmp\n")
    (lean / "Dockerfile.dockerignore").write_text("big.bin\n")
    # full: the SDK would leave big.bin out; pulumi-docker reads the (empty) Dockerfile.dockerignore.
    full = write_context(project / "full", copy_all, {"big.bin": secrets.token_bytes(6_000_000)})
    (full / ".dockerignore").write_text("big.bin\n")
    (full / "Dockerfile.dockerignore").write_text("# nothing left out\n")
    write_stack(project, "t", stack_config([app("lean", "lean"), app("full", "full")]))
    policy = write_policy_config(tmp_path / "policy.json", max_bytes=LIMIT)

    code, report = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, report
    assert _image(report, "lean")["sizeBytes"] < 100_000, report
    assert _image(report, "full")["sizeBytes"] > 6_000_000, report
    [finding] = [f for f in report["findings"] if f["level"] == "mandatory"]
    assert finding["app"] == "full" and "image-size-limit" in finding["policies"], finding


def _image_files(client: docker.DockerClient, image_id: str) -> dict[str, bytes | None]:
    """Every path in the image's layers (`docker save`), with a regular file's bytes."""
    saved = io.BytesIO(b"".join(client.api.get_image(image_id)))
    files: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=saved) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for layer in manifest[0]["Layers"]:
            data = archive.extractfile(layer).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                for member in tar:
                    reader = tar.extractfile(member) if member.isfile() else None
                    files[member.name.rstrip("/")] = reader.read() if reader else None
    return files


def test_the_image_holds_what_the_walk_keeps_with_a_dockerfile_from_the_repository(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "docker").mkdir(parents=True)
    dockerfile = repo / "docker" / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY . /ctx/\n")
    (repo / "docker" / "app.Dockerfile.dockerignore").write_text("big.bin\nsub/skip\n")
    files = {"keep.txt": b"kept", "big.bin": bytes(1000), "sub/skip": b"s", "sub/kept": b"k"}
    context = write_context(repo / "ctx", "FROM scratch\nCOPY nothing /\n", files)
    (context / ".dockerignore").write_text("keep.txt\n")  # the SDK's rule: ignored here
    (context / "empty").mkdir()

    image = build_image(client, BuildSpec(context, dockerfile, root=repo))
    found = {
        k.removeprefix("ctx/"): v for k, v in _image_files(client, image).items() if k.startswith("ctx/")
    }
    assert set(found) == {".dockerignore", "Dockerfile", "keep.txt", "sub", "sub/kept", "empty"}, found
    assert found["keep.txt"] == b"kept" and found["Dockerfile"] == b"FROM scratch\nCOPY nothing /\n"
    # The Dockerfile from outside goes under a hidden name the sent .dockerignore lists (docker/cli's
    # AddDockerfileToBuildContext), so the daemon drops it before COPY: the image never holds it.
    ignore = found[".dockerignore"] or b""
    assert re.fullmatch(rb"keep\.txt\n\n\.dockerfile\.[0-9a-f]{20}\n", ignore), ignore


def test_sending_the_context_counts_against_the_builds_deadline(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    context = _scratch(tmp_path / "slow", b"payload")
    with pytest.raises(BuildFailed) as info:
        build_image(client, BuildSpec(context, context / "Dockerfile"), deadline_s=-1)
    assert info.value.describe("web", "slow/Dockerfile") == (
        "app 'web': docker build of slow/Dockerfile failed before its first step: "
        "sending the build context took longer than the build may take"
    )


# -- the figure, against the registry's -------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with LocalRegistry(users={"ci": PASSWORD}) as started:
        yield started


def _push(client: docker.DockerClient, registry: LocalRegistry, repo: str, tag: str) -> str:
    """Push with the Engine API, as pulumi-docker does; return the pushed `server/repo@sha256:...`."""
    auth = {"username": "ci", "password": PASSWORD}
    name = f"{registry.server}/{repo}"
    digest = None
    for message in client.api.push(name, tag=tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in message, message
        digest = (message.get("aux") or {}).get("Digest", digest)
    assert digest, "the push reported no digest"
    return f"{name}@{digest}"


def _registry_inputs(registry: LocalRegistry, image: str) -> dict[str, Any]:
    return {
        "image": image, "server": registry.server, "username": "ci", "password": PASSWORD,
        "platform": "linux/amd64", "insecure": True, "timeout_seconds": 10, "provider_version": "1",
    }  # fmt: skip


def _mixed_image(client: docker.DockerClient, directory: Path, tag: str) -> str:
    """busybox, random bytes and text: layers that compress from not at all to well."""
    text = "".join(f"{i:08d} a line of text that gzip shrinks a lot\n" for i in range(60_000)).encode()
    context = write_context(
        directory,
        f"FROM {BUSYBOX_IMAGE}\nCOPY random /random\nCOPY text /text\nRUN echo built > /built\n",
        {"random": secrets.token_bytes(3_000_000), "text": text},
    )
    return build_image(client, BuildSpec(context, context / "Dockerfile", tags=(tag,)))


def test_measured_size_agrees_with_the_registry_within_two_percent(
    client: docker.DockerClient, registry: LocalRegistry, tmp_path: Path
) -> None:
    tag = f"{registry.server}/team/mixed:1"
    image_id = _mixed_image(client, tmp_path / "mixed", tag)
    local = measure_image(client, image_id)
    pushed = _push(client, registry, "team/mixed", "1")
    remote = registry_measure(_registry_inputs(registry, pushed))  # ImageSize's own code path
    assert local.compressed and local.layers == remote["layers"] == 4
    ratio = local.size_bytes / remote["size_bytes"]
    print(f"local {local.size_bytes:,} B, registry {remote['size_bytes']:,} B, ratio {ratio:.4f}")
    assert abs(ratio - 1) < 0.02, (local, remote)
    assert local.uncompressed_bytes > local.size_bytes, "the text layer compresses"


# -- the preview: ImageSize measures the build pulumi-docker left in the engine ----------------------


@pytest.fixture(scope="module")
def size_server(engine: LocalDockerEngine) -> Iterator[DynamicProviderServer]:
    # The plugin inherits the environment the engine starts it with: DOCKER_HOST points at our engine.
    assert os.environ["DOCKER_HOST"] == engine.host
    with DynamicProviderServer(ImageSizeProvider()) as server:
        yield server
    assert PASSWORD not in server.stderr_text()


def test_preview_check_measures_the_local_build_and_the_push_replaces_it(
    client: docker.DockerClient, registry: LocalRegistry, size_server: DynamicProviderServer, tmp_path: Path
) -> None:
    tag = f"{registry.server}/team/web:ctx-1"
    _mixed_image(client, tmp_path / "web", tag)
    # What pulumi-docker answers in a preview: `docker inspect <imageName>`'s ID (image.go, isPreview).
    local_id = client.api.inspect_image(tag)["Id"]
    checked = size_server.check(_registry_inputs(registry, local_id))
    assert checked.failures == []
    expected = measure_image(client, local_id)
    assert checked.inputs["size_bytes"] == expected.size_bytes and checked.inputs["layers"] == 4
    assert checked.inputs["size_source"] == (
        f"{LOCAL_SOURCE}: preview build {local_id[:19]}, {expected.method}"
    )

    pushed = _push(client, registry, "team/web", "ctx-1")
    up = _registry_inputs(registry, pushed)
    assert size_server.check(up).inputs.get("size_bytes") is None, "in up, the registry is asked instead"
    assert size_server.diff(checked.inputs, up).has_changes
    _, outs = size_server.create(up)
    assert outs["size_source"] == REGISTRY_SOURCE
    assert abs(outs["size_bytes"] / checked.inputs["size_bytes"] - 1) < 0.02


# -- the engine support itself ----------------------------------------------------------------------


def test_the_engine_stops_and_leaves_nothing_behind(engine: LocalDockerEngine) -> None:
    second = LocalDockerEngine().start()
    directory, pid = second.dir, second.process.pid if second.process else 0
    with second.client() as c:
        assert c.ping()
    second.stop()
    assert not directory.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert str(directory) not in Path("/proc/self/mountinfo").read_text()
