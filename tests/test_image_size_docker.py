"""Issue 17: the image size judged on the PR, with a real Docker Engine and small images.

One private dockerd for the module (tests/support/docker_engine.py), DOCKER_HOST pointing at it; the
registry is Debian's docker-registry (tests/support/registry.py). Limits are set low in the tests' own
policy config, and the projects, stacks and Dockerfiles are the tests' own.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from components.image_size import LOCAL_SOURCE, REGISTRY_SOURCE, ImageSizeProvider
from components.image_size import measure as registry_measure
from offline.check import main
from offline.image_build import BuildFailed, BuildSpec, build_image, gzip_upper_bound, measure_image
from tests.support.docker_engine import BUSYBOX_IMAGE, LocalDockerEngine, import_busybox, write_context
from tests.support.dynamic_provider import DynamicProviderServer
from tests.support.projects import app, make_project, stack_config, write_policy_config, write_stack
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.docker

LIMIT = 5_000_000
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


def _check(project: Path, policy: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--stack", "t", "--project-dir", str(project), "--policy-config", str(policy), *extra])
    return code, capsys.readouterr().out


def _size_line(out: str, name: str) -> str:
    [line] = [x for x in out.splitlines() if x.startswith(f"  {name} (registry.example.com/team/{name}:")]
    return line


def _figure(line: str) -> int:
    found = re.search(r": (?:at most )?([\d,]+) bytes", line)
    assert found, line
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

    code, out = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, out
    assert "mandatory  image-size-limit           kubernetes:argoproj.io/v1alpha1:Application big-" in out
    assert "mandatory  image-size-registry        pulumi-python:dynamic/image:ImageSize big-image-size" in out
    for passing in ("small", "zeros"):
        assert f"image-size-limit           kubernetes:argoproj.io/v1alpha1:Application {passing}-" not in out
        assert f"ImageSize {passing}-image-size" not in out, out
    flat = " ".join(out.split())  # violation details are wrapped
    assert "size_bytes measured locally, before the push" in flat

    big, small, zeros = (_size_line(out, n) for n in ("big", "small", "zeros"))
    assert "bytes compressed (gzip of each of the 1 layer tar(s)" in big
    assert 6_000_000 < _figure(big) < gzip_upper_bound(6_010_000), big
    assert f"image size {_figure(big):,} bytes" in flat and "at or over the limit of 5,000,000 bytes" in flat
    assert ": at most " in small and "under the limit of 5,000,000 bytes, so nothing was compressed" in small
    assert 4_900_000 < _figure(small) < LIMIT, small
    assert "bytes compressed" in zeros and _figure(zeros) < 100_000, zeros
    assert out.splitlines()[-1].startswith("FAIL: stack t") and out.endswith("0 build error(s)\n"), out

    write_stack(project, "t", stack_config([app("small", "small")]))
    code, out = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 0, out
    assert out.splitlines()[-1].startswith("PASS: stack t") and "; 0 mandatory, " in out, out
    assert "0 can't judge yet" in out and "image-size" not in out.split("Image sizes")[0], "judged: a pass"


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

    code, out = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, out
    line = _size_line(out, "sized")
    assert ", docker/sized.Dockerfile): " in line and _figure(line) > 6_144_000, line


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

    code, out = _check(project, policy, capsys, "--build", "--no-render")
    assert code == 1, out
    line = _size_line(out, "broken")
    assert line.endswith(
        ", broken/Dockerfile): BUILD ERROR: app 'broken': docker build of broken/Dockerfile failed at "
        "Step 3/3 : RUN echo compiling && exit 3: The command '/bin/sh -c echo compiling && exit 3' "
        "returned a non-zero code: 3 | last output: compiling"
    ), line
    assert "bytes" in _size_line(out, "fine"), "the other app is still built and judged"
    assert out.splitlines()[-1].startswith("FAIL: stack t") and out.endswith("1 build error(s)\n"), out


def test_a_dockerfile_that_does_not_parse_fails_before_its_first_step(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "bad", "FROM scratch\nNOTANINSTRUCTION x\n")
    with pytest.raises(BuildFailed) as info:
        build_image(client, BuildSpec(context, context / "Dockerfile"))
    text = info.value.describe("web", "bad/Dockerfile")
    assert text.startswith("app 'web': docker build of bad/Dockerfile failed before its first step: ")
    assert "notaninstruction" in text.lower()


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
