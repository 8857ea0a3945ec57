"""Hostile charts and overlays: nothing from outside the repository, no other repository, no network, and
every render bounded. Each case is a project of the test's own with the tiny chart or a small overlay."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import parse_config
from model.config_reader import ConfigError
from model.stack_files import PROJECT_DIR
from policy_check import github, render_common, render_confine, render_source
from policy_check.analyzer_client import MAX_INPUT_FILE_BYTES
from policy_check.check import main as check_main
from policy_check.check import run_check
from policy_check.kustomize_refs import MAX_KUSTOMIZATION_BYTES, MAX_KUSTOMIZATIONS, is_remote
from policy_check.render import render_all
from policy_check.render_common import (
    MAX_BYTES_PER_APPLICATION,
    MAX_OBJECT_DEPTH,
    MAX_OBJECTS_PER_APPLICATION,
    MAX_VALUES_PER_APPLICATION,
    RenderError,
    RenderResult,
    run_bounded,
)
from policy_check.render_source import Repository, normalize_repo_url, this_repository
from policy_check.report import FORMATS
from policy_check.report_format import formatted
from tests.support.applications import application
from tests.support.processes import LocalHTTPServer, QuietHandler
from tests.support.project import base_config
from tests.support.project import make_project as make_config_project
from tests.support.projects import (
    REPO_URL,
    app,
    make_project,
    stack_config,
    write_chart,
    write_policy_config,
    write_stack,
)

pytestmark = pytest.mark.render

SECRET = "TOKEN-outside-the-repository-5f1e"
"""Content of a file outside the repository: it must never reach a render result or a report."""
HERE = Repository(normalize_repo_url(REPO_URL), "--repo-url")
SETTINGS: dict[str, Any] = {"argocd": {}, "cluster": {}}
LEAK_TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: leak
data:
  leak: {{ .Files.Get "files/leak" | quote }}
"""
"""A template that quotes a chart file into a rendered object (and so into a schema error)."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "repo")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "outside.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    return root


def _render(project: Path, config: dict[str, Any] | None = None, **kwargs: Any) -> RenderResult:
    resource = application("dev", SETTINGS, config or app("web", "app"))
    [result] = render_all([resource], project, "dev", **{"repository": HERE, **kwargs})
    assert SECRET not in repr(result), "a file from outside the repository reached the render result"
    return result


def _every_output(report: Any, tmp_path: Path) -> dict[str, str]:
    """What a run prints or writes: each report format, the annotations, the job's step summary."""
    summary = tmp_path / "step-summary.md"
    github.append_summary(formatted(report, "markdown"), {github.SUMMARY_ENV: str(summary)})
    return {
        **{fmt: formatted(report, fmt) for fmt in FORMATS},
        "annotations": "\n".join(github.finding_annotations(report)),
        "step summary": summary.read_text(encoding="utf-8"),
    }


def _link(project: Path, path: str, target: str) -> None:
    link = project / path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


# --- out-of-bounds symlinks -------------------------------------------------------------------------


SYMLINK_CASES: dict[str, list[tuple[str, str]]] = {
    "absolute-file": [("chart/files/leak", "{outside}/outside.txt")],
    "relative-file": [("chart/files/leak", "../../../outside.txt")],
    "absolute-dir": [("chart/files", "{outside}/outside")],
    "chain-through-the-repository": [
        ("shared/leak", "../../outside.txt"),
        ("chart/files/leak", "../../shared/leak"),
    ],
    "in-bounds-dir-holding-a-link-out": [
        ("shared/files/leak", "../../../outside.txt"),
        ("chart/files", "../shared/files"),
    ],
    "absolute-link-inside-the-repository": [("chart/files/leak", "{repo}/shared/inside.txt")],
}
"""(link, target) pairs; `{outside}` is the folder holding the repository, `{repo}` the repository."""


@pytest.mark.parametrize("case", sorted(SYMLINK_CASES))
def test_a_chart_symlink_out_of_bounds_is_refused_as_argo_cd_does(project: Path, case: str) -> None:
    write_chart(project, files={"templates/leak.yaml": LEAK_TEMPLATE})
    (project / "shared").mkdir()
    (project / "shared" / "inside.txt").write_text("inside")
    for link, target in SYMLINK_CASES[case]:
        _link(project, link, target.format(outside=project.parent, repo=project))
    result = _render(project)
    assert result.status == "error", result
    link = "shared/files/leak" if case == "in-bounds-dir-holding-a-link-out" else "chart/files"
    assert f"chart contains an out-of-bounds symlink: {link}" in result.reason, result.reason
    assert "outside.txt" not in result.reason and str(project.parent) not in result.reason


_SEGMENTS = st.sampled_from(["..", ".", "files", "chart", ".git", "config", "x", ""])


@given(st.lists(_SEGMENTS, min_size=1, max_size=6), st.booleans())
@settings(max_examples=200, deadline=None)
def test_a_link_is_refused_exactly_when_it_leaves_the_repository_or_reaches_git(
    tmp_path_factory: pytest.TempPathFactory, segments: list[str], absolute: bool
) -> None:
    """Any target: refused when absolute, when it resolves outside the repository, into `.git`, or to
    the repository's root (which holds `.git`); else the walk passes."""
    root = tmp_path_factory.mktemp("links") / "repo"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text(SECRET)
    (root / "chart" / "files").mkdir(parents=True)
    (root / "x").write_text("x")
    link = root / "chart" / "files" / "leak"
    target = "/".join(segments) or "."
    link.symlink_to(f"{root}/{target}" if absolute else target)
    resolved = Path(os.path.realpath(link))
    inside = resolved.is_relative_to(root) and resolved != link
    expected = absolute or not inside or resolved == root or resolved.is_relative_to(root / ".git")
    try:
        render_confine.check_symlinks(root / "chart", root)
    except RenderError as err:
        assert expected, (target, str(err))
        assert SECRET not in str(err) and "chart/files/leak" in str(err)
        return
    assert not expected, target


def test_a_symlink_that_stays_in_the_repository_renders(project: Path) -> None:
    (project / "shared").mkdir()
    (project / "shared" / "note.txt").write_text("in the repository")
    write_chart(project, files={"templates/leak.yaml": LEAK_TEMPLATE})
    _link(project, "chart/files/leak", "../../shared/note.txt")
    result = _render(project)
    assert result.status == "rendered", result.reason
    [leak] = [o for o in result.objects if o.name == "leak"]
    assert leak.manifest["data"] == {"leak": "in the repository"}


def test_a_rendered_list_or_mapping_is_never_quoted_whole(project: Path, tmp_path: Path) -> None:
    """A file of the repository read with fromYaml lands where a string belongs: the report names it
    with its first characters and its length, in every format."""
    marker = "END-OF-THE-FILE-7Hq"
    values = ", ".join([f"line-{i}" for i in range(40)] + [marker])
    template = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n"
        'data: {x: {{ .Files.Get "files/m.yaml" | fromYaml | toJson }}}\n'
    )
    write_chart(project, files={"files/m.yaml": f"k: [{values}]\n", "templates/m.yaml": template})
    result = _render(project)
    assert result.status == "error" and "characters) is not of type 'string'" in result.reason, result.reason
    assert marker not in result.reason
    write_stack(project, "dev", stack_config([app("web", "app")]))
    report = run_check("dev", project_dir=project, config_file=write_policy_config(tmp_path / "p.json"))
    for where, text in _every_output(report, tmp_path).items():
        assert marker not in text and "is not of type" in text, where


GIT_CONFIG = f"""[http "https://github.com/"]
\textraheader = AUTHORIZATION: basic {SECRET}
"""
"""The checkout's `.git/config` as actions/checkout leaves it on a runner: the job's token inside."""
GIT_LINK = "symlink that reaches the repository's .git folder"
GIT_LEAK_TEMPLATE = '{{ fail (.Files.Get "files/leak") }}\n'
"""A template that puts a chart file into the engine's error, unquoted, where no quote bound cuts it."""


def _git_checkout(project: Path) -> None:
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text(GIT_CONFIG)


@pytest.mark.parametrize(
    ("link", "target", "template", "expected"),
    [
        ("chart/files/leak", "../../.git/config", GIT_LEAK_TEMPLATE, GIT_LINK),
        ("chart/files/leak", "../../.git", GIT_LEAK_TEMPLATE, GIT_LINK),
        (
            "chart/files/root",
            "../..",
            '{{ fail (.Files.Get "files/root/.git/config") }}\n',
            f"{GIT_LINK}: chart/files/root",
        ),
    ],
    ids=["file-in-git", "git-folder", "repository-root"],
)
def test_a_chart_reaching_the_checkouts_git_folder_is_refused(
    project: Path, link: str, target: str, template: str, expected: str
) -> None:
    """In the repository, yet no repository content: on a CI runner `.git/config` holds the token."""
    _git_checkout(project)
    write_chart(project, files={"templates/leak.yaml": template})
    _link(project, link, target)
    result = _render(project)
    assert result.status == "error" and expected in result.reason, result.reason


def test_a_chart_at_the_repository_root_does_not_read_git(project: Path) -> None:
    _git_checkout(project)
    write_chart(project, ".", files={"templates/leak.yaml": '{{ fail (.Files.Get ".git/config") }}\n'})
    result = _render(project, app("web", "app", chart="."))
    assert result.status == "error" and ". holds the repository's .git folder" in result.reason, result.reason


def test_value_files_and_overlay_files_in_git_are_refused(project: Path) -> None:
    _git_checkout(project)
    write_chart(project)
    source = {"repoURL": REPO_URL, "path": "chart", "helm": {"valueFiles": ["../.git/config"]}}
    resource = application("dev", SETTINGS, app("web", "app"), source)
    [result] = render_all([resource], project, "dev", repository=HERE)
    assert result.status == "error", result
    assert "helm.valueFiles: '../.git/config' is in the repository's .git folder" in result.reason
    generator = "configMapGenerator: [{name: leak, files: [../.git/config]}]\n"
    config = _overlay(project, {"kustomization.yaml": "resources: [deployment.yaml]\n" + generator})
    result = _render(project, config)
    assert result.status == "error", result
    assert "configMapGenerator entry '../.git/config' is in the repository's .git" in result.reason


def test_the_git_config_never_reaches_a_report(project: Path, tmp_path: Path) -> None:
    _git_checkout(project)
    write_chart(project, files={"templates/leak.yaml": GIT_LEAK_TEMPLATE})
    _link(project, "chart/files/leak", "../../.git/config")
    write_stack(project, "dev", stack_config([app("web", "app")]))
    report = run_check("dev", project_dir=project, config_file=write_policy_config(tmp_path / "p.json"))
    assert report.exit_code == 1
    for where, text in _every_output(report, tmp_path).items():
        assert SECRET not in text and GIT_LINK in text, f"{where}:\n{text}"


OVERLAY = {
    "kustomization.yaml": "resources: [deployment.yaml]\n",
    "deployment.yaml": textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          replicas: 3
          selector: {matchLabels: {app: app}}
          template:
            metadata: {labels: {app: app}}
            spec:
              containers: [{name: app, image: app}]
        """
    ),
}


def _overlay(project: Path, files: dict[str, str] | None = None, path: str = "overlay") -> dict[str, Any]:
    """An overlay at `project/path` and an app deploying it."""
    for name, text in {**OVERLAY, **(files or {})}.items():
        (project / path / name).parent.mkdir(parents=True, exist_ok=True)
        (project / path / name).write_text(text)
    config = app("web", "app")
    config["source"] = {
        "repoURL": REPO_URL,
        "targetRevision": "main",
        "path": path,
        "type": "kustomize",
        "imageName": "app",
        "workload": "app",
    }
    return config


@pytest.mark.parametrize(
    ("files", "link", "shown"),
    [
        ({"kustomization.yaml": "resources: [deployment.yaml, leak.yaml]\n"}, "overlay/leak.yaml", "overlay"),
        ({"kustomization.yaml": "resources: [deployment.yaml, ../base]\n"}, "base/leak.yaml", "base"),
    ],
    ids=["in-the-overlay", "in-a-base"],
)
def test_an_overlay_symlink_out_of_bounds_is_refused(
    project: Path, files: dict[str, str], link: str, shown: str
) -> None:
    (project / "base").mkdir()
    (project / "base" / "kustomization.yaml").write_text("resources: [leak.yaml]\n")
    config = _overlay(project, files)
    _link(project, link, "../../outside/secret.txt")
    result = _render(project, config)
    assert result.status == "error"
    assert f"{shown} contains an out-of-bounds symlink: {link}" in result.reason, result.reason


def test_an_overlay_reading_a_folder_outside_the_repository_is_refused(project: Path) -> None:
    (project.parent / "outside" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (project.parent / "outside" / "cm.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: leak}}\ndata: {{x: {SECRET}}}\n"
    )
    config = _overlay(project, {"kustomization.yaml": "resources: [deployment.yaml, ../../outside]\n"})
    result = _render(project, config)
    assert result.status == "error"
    assert "resources entry '../../outside' is outside the repository" in result.reason, result.reason


def test_the_leak_never_reaches_a_report(project: Path, tmp_path: Path) -> None:
    """The issue's case: the leaked text would fail the schema and be quoted into every format."""
    write_chart(project, files={"templates/leak.yaml": LEAK_TEMPLATE.replace("data:", "spec:")})
    _link(project, "chart/files/leak", str(project.parent / "outside.txt"))
    write_stack(project, "dev", stack_config([app("web", "app")]))
    report = run_check("dev", project_dir=project, config_file=write_policy_config(tmp_path / "p.json"))
    assert report.exit_code == 1
    for where, text in _every_output(report, tmp_path).items():
        assert SECRET not in text and "out-of-bounds symlink" in text, f"{where}:\n{text}"


# --- Helm dependencies -------------------------------------------------------------------------------


SUBCHART = {
    "Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    "values.yaml": "image: {repository: x, digest: ''}\nimagePullSecrets: []\n",
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}-sub"}
spec:
  replicas: 1
  selector: {matchLabels: {app: sub}}
  template:
    metadata: {labels: {app: sub}}
    spec:
      containers: [{name: sub, image: "{{ .Values.image.repository }}"}]
""",
}


def _with_dependency(project: Path, repository: str | None, *, vendored: bool = False) -> None:
    dependency = {"name": "sub", "version": "0.1.0"}
    if repository is not None:
        dependency["repository"] = repository
    chart_yaml = "apiVersion: v2\nname: tiny\nversion: 0.1.0\n" + yaml.safe_dump(
        {"dependencies": [dependency]}
    )
    write_chart(project, files={"Chart.yaml": chart_yaml})
    write_chart(project, "charts/sub" if not vendored else "chart/charts/sub", files=SUBCHART)


def _sub(result: RenderResult) -> Any:
    [sub] = [o for o in result.objects if o.name == "web-sub"]
    return sub


@pytest.mark.parametrize(
    ("repository", "vendored", "template"),
    [
        ("file://../charts/sub", False, "charts/sub/templates/deployment.yaml"),
        (None, True, "chart/charts/sub/templates/deployment.yaml"),
        ("https://charts.example.com", True, "chart/charts/sub/templates/deployment.yaml"),
    ],
    ids=["file", "vendored", "vendored-remote"],
)
def test_a_subchart_renders_as_argo_cd_renders_it(
    project: Path, repository: str | None, vendored: bool, template: str
) -> None:
    _with_dependency(project, repository, vendored=vendored)
    result = _render(project)
    assert result.status == "rendered", result.reason
    assert _sub(result).manifest["spec"]["replicas"] == 1
    assert _sub(result).template == template
    assert not list((project / "chart").glob("charts/*.tgz")), "the repository's chart was written to"


def test_a_subchart_with_one_replica_fails_the_check(project: Path, tmp_path: Path) -> None:
    _with_dependency(project, "file://../charts/sub")
    write_stack(project, "dev", stack_config([app("web", "app")]))
    config = write_policy_config(tmp_path / "p.json", min_replicas=3)
    report = run_check("dev", project_dir=project, config_file=config)
    assert report.exit_code == 1, formatted(report, "table")
    failed = {d.urn.rsplit("::", 1)[-1] for d in report.mandatory if d.policy.startswith("minimum-replicas")}
    assert "web-sub" in failed, formatted(report, "table")


@pytest.mark.parametrize(
    "repository", ["https://charts.example.com", "oci://registry.example.com/charts", "@stable", "alias:x"]
)
def test_a_remote_dependency_is_cant_judge_yet_with_the_reason(project: Path, repository: str) -> None:
    _with_dependency(project, repository)
    result = _render(project)
    assert (result.status, result.objects) == ("not-rendered", ())
    assert result.reason == (
        f"can't judge yet: dependency 'sub' ({repository}) is not vendored in charts/ and the offline "
        "check fetches nothing"
    )


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("file://../../outside", "dependency 'sub' (file://../../outside) is outside the repository"),
        (
            "file://../nothing",
            "dependency 'sub' (file://../nothing) is not a chart folder of this repository",
        ),
        (None, "dependency 'sub' has no repository and is not in charts/"),
    ],
)
def test_a_dependency_that_cannot_be_built_is_an_error(project: Path, repository: str, expected: str) -> None:
    _with_dependency(project, repository)
    (project.parent / "outside" / "Chart.yaml").write_text("apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    result = _render(project)
    assert result.status == "error" and expected in result.reason, result.reason


def test_a_file_dependency_with_a_symlink_out_is_refused(project: Path) -> None:
    _with_dependency(project, "file://../charts/sub")
    _link(project, "charts/sub/files/leak", "../../../../outside.txt")
    result = _render(project)
    assert result.status == "error"
    assert "charts/sub contains an out-of-bounds symlink: charts/sub/files/leak" in result.reason


# --- this repository only ----------------------------------------------------------------------------


def test_an_app_from_another_repository_is_cant_judge_yet_naming_it(project: Path) -> None:
    write_chart(project)
    config = app("web", "app")
    config["source"]["repoURL"] = "https://user:SECRET-TOKEN@github.com/Other-Org/charts.git"
    result = _render(project, config)
    assert (result.status, result.objects) == ("not-rendered", ())
    assert result.reason == (
        "can't judge yet: the source is another repository, github.com/other-org/charts; only this "
        "repository, github.com/example-org/gitops-deploy (--repo-url), is rendered"
    )


def test_without_a_known_repository_nothing_is_rendered(project: Path) -> None:
    write_chart(project)
    [result] = render_all([application("dev", SETTINGS, app("web", "app"))], project, "dev")
    assert result.status == "not-rendered"
    assert "set gitops-deploy:argocd.repoURL or pass --repo-url" in result.reason


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True, timeout=30)


def test_the_checkouts_origin_names_this_repository_in_any_form(project: Path) -> None:
    _git(project, "init", "-q")
    _git(project, "remote", "add", "origin", "git@GitHub.com:example-org/gitops-deploy.git")
    assert this_repository(project) == Repository("github.com/example-org/gitops-deploy", "git remote origin")
    values = {"gitops-deploy:argocd": {"repoURL": "https://git.example.com/mirror.git"}}
    assert this_repository(project, values).url == "git.example.com/mirror"
    assert this_repository(project, values, "ssh://git@h.example.com:22/x/").url == "h.example.com/x"


def test_the_check_renders_an_app_of_the_origin_and_refuses_the_others(project: Path, tmp_path: Path) -> None:
    write_chart(project)
    _git(project, "init", "-q")
    _git(project, "remote", "add", "origin", "https://github.com/example-org/gitops-deploy")
    other = app("api", "app")
    other["source"]["repoURL"] = "https://github.com/example-org/other.git"
    config = stack_config([app("web", "app"), other])
    del config["gitops-deploy:argocd"]["repoURL"]
    write_stack(project, "dev", config)
    report = run_check("dev", project_dir=project, config_file=write_policy_config(tmp_path / "p.json"))
    status = {r.application: r.status for r in report.renders}
    assert status == {"web": "rendered", "api": "not-rendered"}, formatted(report, "table")
    [api] = [r for r in report.renders if r.application == "api"]
    assert api.reason.startswith(
        "can't judge yet: the source is another repository, github.com/example-org/other;"
    )
    assert "api: not rendered: can't judge yet" in formatted(report, "table")


SAME = [
    "https://github.com/example-org/gitops-deploy.git",
    "https://github.com/example-org/gitops-deploy",
    "https://GitHub.com/example-org/gitops-deploy/",
    "http://github.com:80/example-org/gitops-deploy.git",
    "https://ci:token@github.com/example-org/gitops-deploy.git",
    "ssh://git@github.com/example-org/gitops-deploy.git",
    "git@github.com:example-org/gitops-deploy.git",
    "github.com:example-org/gitops-deploy",
]


@pytest.mark.parametrize("url", SAME)
def test_the_forms_of_one_repository_are_the_same_repository(url: str) -> None:
    assert HERE.holds(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/example-org/gitops-deploy-fork.git",
        "https://gitlab.com/example-org/gitops-deploy.git",
        "https://github.com/example-org/gitops-deploy.git/sub",
        "https://github.com:8443/example-org/gitops-deploy.git",
        "file:///srv/gitops-deploy.git",
        "",
        "not a url",
    ],
)
def test_other_repositories_are_not_this_one(url: str) -> None:
    assert not HERE.holds(url)


_SEGMENT = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(host=_SEGMENT, org=_SEGMENT, repo=_SEGMENT, user=_SEGMENT)
def test_normalizing_ignores_transport_user_case_and_git_suffix(
    host: str, org: str, repo: str, user: str
) -> None:
    host = f"{host}.example"
    forms = {
        f"https://{host}/{org}/{repo}.git",
        f"https://{user}:{user}@{host.upper()}/{org}/{repo}/",
        f"ssh://{user}@{host}/{org}/{repo}",
        f"{user}@{host}:{org}/{repo}.git",
    }
    normalized = {normalize_repo_url(f) for f in forms}
    assert normalized == {f"{host}/{org}/{repo}".lower()}
    assert all(user not in n.split("/", 1)[0] or user in host for n in normalized if n)


# --- bounds --------------------------------------------------------------------------------------------


def _many(count: int, pad: int = 0) -> str:
    return (
        f"{{{{- range $i := until {count} }}}}\n---\napiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: cm-{{{{ $i }}}}}}\ndata: {{x: {'y' * max(pad, 1)}}}\n{{{{- end }}}}\n"
    )


@pytest.mark.parametrize(
    ("count", "pad", "bound"),
    [
        (100_000, 400, f"over {MAX_BYTES_PER_APPLICATION} bytes, the bound per Application"),
        (MAX_OBJECTS_PER_APPLICATION * 5, 0, f"more than {MAX_OBJECTS_PER_APPLICATION} objects"),
    ],
    ids=["bytes", "objects"],
)
def test_a_chart_past_a_bound_fails_quickly_naming_it(
    project: Path, count: int, pad: int, bound: str
) -> None:
    write_chart(project, files={"templates/many.yaml": _many(count, pad)})
    start = time.monotonic()
    result = _render(project)
    assert time.monotonic() - start < 30
    assert result.status == "error"
    assert result.reason.startswith("Application 'web': helm render of chart failed: renders ")
    assert bound in result.reason and "\n" not in result.reason


def test_an_overlay_past_the_object_bound_fails(project: Path) -> None:
    many = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"
        for i in range(MAX_OBJECTS_PER_APPLICATION + 1)
    )
    config = _overlay(
        project, {"kustomization.yaml": "resources: [deployment.yaml, many.yaml]\n", "many.yaml": many}
    )
    result = _render(project, config)
    assert result.status == "error"
    assert f"renders more than {MAX_OBJECTS_PER_APPLICATION} objects" in result.reason, result.reason


def test_reading_the_render_is_bounded_in_time(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_chart(project)
    monkeypatch.setattr(render_common, "MAX_SECONDS_AFTER_RENDER", -1.0)
    result = _render(project)
    assert result.status == "error"
    assert "reading the rendered objects took over -1s, the bound per Application" in result.reason


def _nested(levels: int) -> str:
    """A ConfigMap whose data nests `levels` levels in all (flow lists inside `data.x`)."""
    inner = levels - 2  # the object and `data` are two levels
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n"
    return f"{head}data: {{x: {'[' * inner}{']' * inner}}}\n"


def _laughs(levels: int) -> str:
    """A ConfigMap of a few lines whose aliases expand tenfold per level."""
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: laughs}",
        "data:",
        "  l0: &l0 [1,1,1,1,1,1,1,1,1,1]",
    ]
    lines += [f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("template", "bound"),
    [
        (_nested(10_000), f"nesting deeper than {MAX_OBJECT_DEPTH} levels, the bound per object"),
        (_nested(MAX_OBJECT_DEPTH + 1), f"nesting deeper than {MAX_OBJECT_DEPTH} levels"),
        (_laughs(8), f"renders more than {MAX_VALUES_PER_APPLICATION} values (YAML aliases counted"),
    ],
    ids=["10000-deep", "one-past-the-depth", "aliases"],
)
def test_a_rendered_document_past_a_bound_fails_quickly_naming_it(
    project: Path, template: str, bound: str
) -> None:
    """Without the bounds: a RecursionError traceback, the pack's gRPC failing, or a walk of 10^8 values."""
    write_chart(project, files={"templates/odd.yaml": template})
    start = time.monotonic()
    result = _render(project)
    assert time.monotonic() - start < 30
    assert result.status == "error" and bound in result.reason, result.reason
    assert "\n" not in result.reason


def test_a_document_at_the_bounds_is_read() -> None:
    [deep] = render_common.parse_documents(_nested(MAX_OBJECT_DEPTH), "t")
    assert deep["metadata"] == {"name": "deep"}
    [laughs] = render_common.parse_documents(_laughs(4), "t")  # some 10^5 values: within the bound
    assert len(laughs["data"]["l4"]) == 10


def test_a_kustomization_nesting_too_deeply_is_one_line(project: Path) -> None:
    config = _overlay(project, {"kustomization.yaml": f"resources: {'[' * 50_000}{']' * 50_000}\n"})
    result = _render(project, config)
    assert result.status == "error"
    assert "overlay/kustomization.yaml: nests too deeply to be a kustomization" in result.reason


def test_the_kustomize_walk_is_bounded_in_kustomizations_and_bytes(project: Path) -> None:
    """Each overlay is a base of the next: one past the bound is refused before kustomize runs."""
    chain = MAX_KUSTOMIZATIONS + 1
    for i in range(1, chain):
        below = f"resources: [../b{i + 1}]\n" if i + 1 < chain else "resources: []\n"
        (project / f"b{i}").mkdir()
        (project / f"b{i}" / "kustomization.yaml").write_text(below)
    config = _overlay(project, {"kustomization.yaml": "resources: [deployment.yaml, ../b1]\n"})
    result = _render(project, config)
    assert result.status == "error", result
    assert f"overlay reads more than {MAX_KUSTOMIZATIONS} kustomizations" in result.reason, result.reason
    (project / "b1" / "kustomization.yaml").write_text("resources: []\n" + "#" * MAX_KUSTOMIZATION_BYTES)
    result = _render(project, config)
    assert f"b1/kustomization.yaml: over {MAX_KUSTOMIZATION_BYTES:,} bytes" in result.reason, result.reason


def test_the_symlink_walk_is_bounded(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_confine, "MAX_WALK_ENTRIES", 20)
    write_chart(project, files={f"files/f{i}.txt": "x" for i in range(25)})
    result = _render(project)
    assert result.status == "error"
    assert "chart holds more than 20 files and folders; the offline render does not read" in result.reason


def test_an_engines_stderr_is_kept_to_its_tail() -> None:
    noisy = "import sys\nsys.stderr.write('x' * (4 << 20) + 'THE-END')\nsys.exit(3)"
    done = run_bounded([sys.executable, "-c", noisy], timeout=30, what="noisy")
    assert done.returncode == 3
    assert len(done.stderr) <= render_common.MAX_STDERR_BYTES and done.stderr.endswith("THE-END")


def test_asking_git_for_the_origin_is_bounded(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `git` that never answers (a hung credential helper, a network filesystem): no origin, quickly."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(render_source, "GIT_TIMEOUT_SECONDS", 0.5)
    start = time.monotonic()
    found = this_repository(project)
    assert time.monotonic() - start < 5
    assert found.url is None and found.origin.startswith("no --repo-url"), found


def test_an_engine_writing_past_the_byte_bound_is_stopped(tmp_path: Path) -> None:
    endless = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    start = time.monotonic()
    with pytest.raises(RenderError, match=f"over {MAX_BYTES_PER_APPLICATION} bytes"):
        run_bounded([sys.executable, "-c", endless], timeout=30, what="writer")
    assert time.monotonic() - start < 20


# --- no network --------------------------------------------------------------------------------------


class _Recorder(QuietHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: remote}\n"
        self.reply(200, body, {"Content-Type": "text/plain"})


@pytest.fixture
def recorder() -> Any:
    _Recorder.requests = []
    with LocalHTTPServer(_Recorder) as server:
        yield server


def _remote_entries(server: str) -> list[str]:
    return [f"http://{server}/cm.yaml", f"git::http://{server}/org/repo.git//base?ref=v1"]


def test_a_remote_resource_is_cant_judge_yet_and_nothing_is_fetched(project: Path, recorder: Any) -> None:
    remote = _remote_entries(recorder.server)
    kustomization = yaml.safe_dump({"resources": ["deployment.yaml", *remote]})
    result = _render(project, _overlay(project, {"kustomization.yaml": kustomization}))
    assert (result.status, result.objects) == ("not-rendered", ())
    assert result.reason == (
        f"can't judge yet: the overlay refers to remote {', '.join(remote)}, which the offline check does "
        "not fetch (--allow-remote fetches it, unpinned)"
    )
    assert _Recorder.requests == []


def test_allow_remote_lets_kustomize_fetch(project: Path, recorder: Any) -> None:
    """The other side of the test above: the server does see kustomize's request when it may fetch."""
    kustomization = yaml.safe_dump({"resources": ["deployment.yaml", f"http://{recorder.server}/cm.yaml"]})
    result = _render(project, _overlay(project, {"kustomization.yaml": kustomization}), allow_remote=True)
    assert _Recorder.requests == ["/cm.yaml"]
    assert result.status == "rendered", result.reason
    assert {o.name for o in result.objects} == {"web-app", "web-remote"}


@pytest.mark.parametrize(
    "entry",
    [
        "github.com/org/repo//base?ref=v1",
        "https://github.com/org/repo.git",
        "git::https://example.com/org/repo.git",
        "git@github.com:org/repo.git",
        "example.com/org/repo/base",
    ],
)
def test_remote_bases_in_a_local_base_are_found(project: Path, entry: str) -> None:
    (project / "base").mkdir()
    (project / "base" / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [entry]}))
    config = _overlay(project, {"kustomization.yaml": "resources: [deployment.yaml, ../base]\n"})
    result = _render(project, config)
    assert result.status == "not-rendered" and entry in result.reason, result.reason


def test_a_missing_local_entry_is_an_error_never_handed_to_kustomize(project: Path) -> None:
    config = _overlay(project, {"kustomization.yaml": "resources: [deployment.yaml, ../nowhere/base]\n"})
    result = _render(project, config)
    assert result.status == "error"
    assert "resources entry '../nowhere/base' is not a file or folder of this repository" in result.reason


@given(
    st.sampled_from(["http://", "https://", "git::", "ssh://", "git@", "github.com/"]), st.text(max_size=30)
)
def test_every_url_form_is_remote(prefix: str, rest: str) -> None:
    assert is_remote(prefix + rest)


AUDIT = """
import os, socket, sys
def _hook(event, args):
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            with open(os.environ["CONNECT_LOG"], "a") as log:
                log.write(f"{host}\\n")
            raise OSError("non-loopback connection refused by the test")
sys.addaudithook(_hook)
"""


def test_the_check_opens_no_socket_beyond_loopback(project: Path, tmp_path: Path, recorder: Any) -> None:
    """The whole check in a process whose every Python connect is audited; kustomize (Go) is covered
    by the loopback server, which sees no request."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(AUDIT)
    kustomization = yaml.safe_dump(
        {"resources": ["deployment.yaml", *_remote_entries(recorder.server), "github.com/org/repo//x"]}
    )
    config = stack_config([_overlay(project, {"kustomization.yaml": kustomization})])
    write_stack(project, "dev", config)
    log = tmp_path / "connects.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'hook'}{os.pathsep}{PROJECT_DIR}",
        "CONNECT_LOG": str(log),
    }
    probe = "import socket\ntry: socket.create_connection(('192.0.2.1', 9), timeout=1)\nexcept OSError: pass"
    subprocess.run([sys.executable, "-c", probe], env=env, timeout=30, check=True)
    assert log.read_text() == "192.0.2.1\n", "the audit hook does not see connections"
    log.unlink()
    policy = write_policy_config(tmp_path / "p.json")
    argv = [sys.executable, "-m", "policy_check", "--stack", "dev", "--project-dir", str(project)]
    done = subprocess.run(
        [*argv, "--policy-config", str(policy), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not log.exists(), log.read_text()
    assert _Recorder.requests == []
    assert "can't judge yet: the overlay refers to remote" in done.stdout


def test_the_repository_key_must_be_a_git_url_and_is_never_echoed(tmp_path: Path) -> None:
    config = {"argocd": {"repoURL": "not a url TOKEN-x"}, **_raw(base_config())}
    with pytest.raises(ConfigError) as raised:
        parse_config(config, make_config_project(tmp_path))
    assert raised.value.problems == [
        "gitops-deploy:argocd.repoURL: got a value that is not a Git URL; expected this repository's "
        "http(s)://, ssh:// or git@host:org/repo URL"
    ]


def test_a_bad_repo_url_option_is_a_clear_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_stack(project, "dev", stack_config([app("web", "app")]))
    argv = ["--stack", "dev", "--project-dir", str(project), "--repo-url", "nope TOKEN-y"]
    assert check_main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: --repo-url: expected a Git URL (https://host/org/repo.git or git@host:org/repo)\n"


def _input_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A file the check is handed that it must refuse in one line, and what the line says."""
    path = tmp_path / f"{kind}.json"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: opening it would wait forever
        return path, "cannot be read (not a regular file)"
    if kind == "device":
        return Path("/dev/zero"), "cannot be read (not a regular file)"  # reading it never ends
    if kind == "sparse":
        with path.open("wb") as handle:
            handle.truncate(MAX_INPUT_FILE_BYTES + 1)
        return path, f"over {MAX_INPUT_FILE_BYTES:,} bytes"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path, "nests too deeply"


@pytest.mark.parametrize("option", ["--stack-outputs", "--policy-config"])
@pytest.mark.parametrize("kind", ["fifo", "device", "sparse", "deep"])
def test_a_file_handed_to_the_check_is_read_with_bounds(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, kind: str
) -> None:
    write_stack(project, "dev", stack_config([app("web", "app")]))
    path, says = _input_file(tmp_path, kind)
    start = time.monotonic()
    assert check_main(["--stack", "dev", "--project-dir", str(project), option, str(path)]) == 2
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    what = "--stack-outputs" if option == "--stack-outputs" else "policy config"
    assert err == f"error: {what} {path}: {says}\n", err


def _raw(config: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("gitops-deploy:"): v for k, v in config.items()}
