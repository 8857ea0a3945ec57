"""A corpus of malformed stack files: each ends with exit 2 and one error block naming the file and the
key, with no traceback and nothing registered.

The files are the test's own (tests/support/project.py), in a project of its own: YAML that does not
parse, values JSON cannot carry, and config the program refuses.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.config_reader import ConfigError
from model.stack_files import MAX_BYTES, MAX_NODES, StackFileError
from policy_check.simulate import ProgramFailed, simulate
from tests.support.project import BASE_STACK_YAML, base_config, check_stack, make_project, write_stack

STACK = "corpus"
FILE = f"Pulumi.{STACK}.yaml"
TOKEN = "corpus-token-Hq7Zp2Lx"
"""A credential written where none belongs (a URL's userinfo): no error may show it."""


HOSTILE_KEY_YAML = '"gitops-deploy:bu`ild\\n\\n## Policy check PASSED\\n```\\u001b[2J"'
"""A stack-file key (as YAML) that would end the error's line and forge a verdict and a fence."""
HOSTILE_KEY_SHOWN = "gitops-deploy:bu`ild  ## Policy check PASSED ```\\x1b[2J"
"""The same key as an error shows it: on the error's one line, the control visible."""


def edit(old: str, new: str) -> str:
    """The base file with one passage replaced (the passage must be there)."""
    assert old in BASE_STACK_YAML, old
    return BASE_STACK_YAML.replace(old, new, 1)


# (id, stack file text, what the error must name besides the file)
TEXT_CASES: list[tuple[str, str, str]] = [
    ("indent-under-app", edit("      replicas: 3\n", "     replicas: 3\n"), "replicas"),
    ("indent-over-app", edit("      namespace: web-test\n", "        namespace: web-test\n"), "namespace"),
    ("tab-indent", edit("    username: ci\n", "\tusername: ci\n"), ":4:"),
    ("unclosed-quote", edit("main\n", '"main\n'), "targetRevision"),
    ("unclosed-flow", edit("    username: ci\n", "    username: [ci\n"), "username"),
    ("two-documents", BASE_STACK_YAML + "---\nconfig: {}\n", "single document"),
    ("undefined-alias", edit("targetRevision: main", "targetRevision: *rev"), "rev"),
    ("recursive-alias", edit("      replicas: 3\n", "      replicas: &r [*r]\n"), "recursive alias"),
    ("python-tag", edit("targetRevision: main", "targetRevision: !!python/name:os.system"), "targetRevision"),
    ("duplicate-key", edit("      replicas: 3\n", "      replicas: 3\n      replicas: 4\n"), "replicas"),
    ("duplicate-top-key", BASE_STACK_YAML + "  gitops-deploy:registry: {}\n", "gitops-deploy:registry"),
    ("key-without-namespace", edit("  gitops-deploy:apps:\n", "  apps:\n"), "config key 'apps'"),
    ("complex-key", BASE_STACK_YAML + "  ? [a, b]\n  : 1\n", "not text"),
    ("document-is-a-list", "- config\n", "'config:'"),
    ("config-is-a-list", "config:\n  - gitops-deploy:apps\n", "config"),
    ("date", edit("targetRevision: main", "targetRevision: 2024-05-01"), "source.targetRevision"),
    ("datetime", edit("targetRevision: main", "targetRevision: 2024-05-01T10:00:00Z"), "targetRevision"),
    ("binary", edit("username: ci", "username: !!binary Y2k="), "gitops-deploy:registry.username"),
    ("set", edit("      replicas: 3\n", "      replicas: !!set {3}\n"), "apps[0].replicas"),
    ("omap", edit("    username: ci\n", "    username: !!omap [{a: 1}]\n"), "registry.username"),
    ("nan", edit("replicas: 3", "replicas: .nan"), "apps[0].replicas"),
    ("infinity", edit("replicas: 3", "replicas: -.inf"), "apps[0].replicas"),
    ("overflowing-float", edit("replicas: 3", "replicas: 1.0e+999"), "apps[0].replicas"),
    (
        "duplicate-key-with-a-line-break",
        BASE_STACK_YAML + f"  {HOSTILE_KEY_YAML}: 1\n  {HOSTILE_KEY_YAML}: 2\n",
        f"{HOSTILE_KEY_SHOWN}: the key appears twice",
    ),
    (
        "key-without-namespace-with-a-line-break",
        BASE_STACK_YAML + '  "x\\n# Policy check PASSED": 1\n',
        "config key 'x\\n# Policy check PASSED'",
    ),
]


def _laughs(levels: int) -> str:
    """A few lines whose aliases expand tenfold per level (a "billion laughs" in small)."""
    lines = ["  gitops-deploy:l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels + 1):
        lines.append(f"  gitops-deploy:l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _sized(case: str, text: str) -> tuple[str, str, str]:
    """A case over the byte limit: the error gives the file's own size (ASCII: one byte a character)."""
    return case, text, f"({len(text):,} bytes); the limit for a stack file is 1.0 MiB ({MAX_BYTES:,} bytes)"


# (id, stack file text, what the error must say): each limit named as the one that was over.
LIMIT_CASES: list[tuple[str, str, str]] = [
    _sized("over-the-byte-limit", BASE_STACK_YAML + "# " + "x" * MAX_BYTES + "\n"),
    _sized(
        "two-megabytes-no-aliases",
        BASE_STACK_YAML + "".join(f"  gitops-deploy:k{i}: {i}\n" for i in range(70_000)),
    ),
    (
        "nodes-as-written",
        BASE_STACK_YAML + f"  gitops-deploy:padding: [{', '.join(['1'] * MAX_NODES)}]\n",
        f"holds more than {MAX_NODES:,} keys and values as written",
    ),
    ("nodes-through-aliases", BASE_STACK_YAML + _laughs(5), f"aliases expand it to more than {MAX_NODES:,}"),
]

Mutate = Callable[[dict[str, Any]], None]


def app_set(path: str, value: Any) -> Mutate:
    """Set a dotted path inside apps[0]."""

    def mutate(cfg: dict[str, Any]) -> None:
        target = cfg["gitops-deploy:apps"][0]
        *parents, last = path.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return mutate


def top_set(key: str, value: Any) -> Mutate:
    return lambda cfg: cfg.update({f"gitops-deploy:{key}": value})


def registry_set(key: str, value: Any) -> Mutate:
    return lambda cfg: cfg["gitops-deploy:registry"].update({key: value})


def second_app_same_name(cfg: dict[str, Any]) -> None:
    cfg["gitops-deploy:apps"].append(copy.deepcopy(cfg["gitops-deploy:apps"][0]))


# (id, mutation of a valid config, the key (after `gitops-deploy:`) the one problem names)
CONFIG_CASES: list[tuple[str, Mutate, str]] = [
    ("typo-clusters", top_set("clusters", {"name": "prod"}), "clusters"),
    ("typo-app", top_set("app", []), "app"),
    ("typo-registy", top_set("registy", {}), "registy"),
    ("typo-case", top_set("Build", {}), "Build"),
    (
        "unknown-key-with-a-line-break",
        top_set("bu`ild\n\n## Policy check PASSED\n```\x1b[2J", 1),
        HOSTILE_KEY_SHOWN.removeprefix("gitops-deploy:"),
    ),
    ("typo-password", top_set("registryPasword", "x"), "registryPasword"),
    ("registry-missing", lambda c: c.pop("gitops-deploy:registry"), "registry"),
    ("registry-scheme", registry_set("server", "https://registry.example.com"), "registry.server"),
    ("registry-port", registry_set("server", "registry.example.com:99999"), "registry.server"),
    ("registry-newline", registry_set("server", "registry.example.com\n"), "registry.server"),
    ("registry-username", registry_set("username", ""), "registry.username"),
    ("registry-insecure", registry_set("insecure", "yes"), "registry.insecure"),
    ("registry-unknown", registry_set("pasword", "x"), "registry.pasword"),
    ("argocd-namespace", top_set("argocd", {"namespace": "Argo CD"}), "argocd.namespace"),
    ("argocd-project-newline", top_set("argocd", {"project": "team\n"}), "argocd.project"),
    ("argocd-timeout", top_set("argocd", {"syncTimeoutSeconds": 5}), "argocd.syncTimeoutSeconds"),
    ("argocd-manage", top_set("argocd", {"manageProject": "true"}), "argocd.manageProject"),
    ("argocd-unknown", top_set("argocd", {"namepsace": "argocd"}), "argocd.namepsace"),
    ("cluster-both", top_set("cluster", {"name": "a", "server": "https://b"}), "cluster"),
    ("cluster-http", top_set("cluster", {"server": "http://k8s.example.com"}), "cluster.server"),
    ("cluster-port", top_set("cluster", {"server": "https://k8s.example.com:70000"}), "cluster.server"),
    (
        "cluster-userinfo",
        top_set("cluster", {"server": f"https://{TOKEN}@k8s.example.com"}),
        "cluster.server",
    ),
    ("build-threshold", top_set("build", {"lintThreshold": "fatal"}), "build.lintThreshold"),
    ("build-ignore-newline", top_set("build", {"ignore": ["DL3008\n"]}), "build.ignore[0]"),
    (
        "build-trusted-port",
        top_set("build", {"trustedRegistries": ["docker.io:0"]}),
        "build.trustedRegistries[0]",
    ),
    ("build-on-preview", top_set("build", {"onPreview": 1}), "build.onPreview"),
    ("apps-empty", top_set("apps", []), "apps"),
    ("apps-object", top_set("apps", {"name": "web"}), "apps"),
    ("app-not-object", top_set("apps", ["web"]), "apps[0]"),
    ("app-name", app_set("name", "Web_App"), "apps[0] (Web_App).name"),
    ("app-name-newline", app_set("name", "web\n"), "apps[0].name"),
    ("app-duplicate", second_app_same_name, "apps[1] (web).name"),
    ("app-namespace", app_set("namespace", "-web"), "apps[0] (web).namespace"),
    ("replicas-zero", app_set("replicas", 0), "apps[0] (web).replicas"),
    ("replicas-string", app_set("replicas", "3"), "apps[0] (web).replicas"),
    ("replicas-fraction", app_set("replicas", 1.5), "apps[0] (web).replicas"),
    ("app-unknown-key", app_set("replica", 3), "apps[0] (web).replica"),
    ("image-missing", lambda c: c["gitops-deploy:apps"][0].pop("image"), "apps[0] (web).image"),
    (
        "repository-elsewhere",
        app_set("image.repository", "docker.io/team/web"),
        "apps[0] (web).image.repository",
    ),
    (
        "repository-tag",
        app_set("image.repository", "registry.example.com/team/web:1"),
        "apps[0] (web).image.repository",
    ),
    (
        "pin-newline",
        app_set("image.pin", f"registry.example.com/team/web@sha256:{'a' * 64}\n"),
        "apps[0] (web).image.pin",
    ),
    ("platform-newline", app_set("image.platform", "linux/amd64\n"), "apps[0] (web).image.platform"),
    ("build-args", app_set("image.buildArgs", {"VERSION": 2}), "apps[0] (web).image.buildArgs.VERSION"),
    ("context-missing", app_set("image.context", "nowhere"), "apps[0] (web).image.context"),
    ("source-missing", lambda c: c["gitops-deploy:apps"][0].pop("source"), "apps[0] (web).source"),
    (
        "repo-url-newline",
        app_set("source.repoURL", "https://github.com/o/r.git\n"),
        "apps[0] (web).source.repoURL",
    ),
    (
        "repo-url-token",
        app_set("source.repoURL", f"https://{TOKEN}@github.com/example-org/gitops-deploy.git"),
        "apps[0] (web).source.repoURL",
    ),
    (
        "repo-url-ssh-password",
        app_set("source.repoURL", f"ssh://git:{TOKEN}@github.com/example-org/gitops-deploy.git"),
        "apps[0] (web).source.repoURL",
    ),
    (
        "repo-url-token-no-path",
        app_set("source.repoURL", f"https://{TOKEN}@github.com"),
        "apps[0] (web).source.repoURL",
    ),
    ("registry-userinfo", registry_set("server", f"https://{TOKEN}@registry.example.com"), "registry.server"),
    ("registry-user-at", registry_set("server", f"{TOKEN}@registry.example.com"), "registry.server"),
    ("revision-empty", app_set("source.targetRevision", " "), "apps[0] (web).source.targetRevision"),
    ("path-escapes", app_set("source.path", "../charts"), "apps[0] (web).source.path"),
    ("source-type", app_set("source.type", "jsonnet"), "apps[0] (web).source.type"),
    ("image-name-helm", app_set("source.imageName", "web"), "apps[0] (web).source.imageName"),
    ("health-missing", lambda c: c["gitops-deploy:apps"][0].pop("health"), "apps[0] (web).health"),
    ("health-url-scheme", app_set("health.url", "tcp://web:80/"), "apps[0] (web).health.url"),
    (
        "health-userinfo-token",
        app_set("health.url", f"https://{TOKEN}@web.example.com/healthz"),
        "apps[0] (web).health.url",
    ),
    (
        "health-userinfo-token-colon",
        app_set("health.url", f"https://{TOKEN}:@web.example.com/healthz"),
        "apps[0] (web).health.url",
    ),
    (
        "health-userinfo-password",
        app_set("health.url", f"https://ci:{TOKEN}@[::1]:8443/healthz"),
        "apps[0] (web).health.url",
    ),
    (
        "health-userinfo-bad-port",
        app_set("health.url", f"https://{TOKEN}@web.example.com:99999/healthz"),
        "apps[0] (web).health.url",
    ),
    (
        "health-url-port",
        app_set("health.url", "https://web.example.com:99999/healthz"),
        "apps[0] (web).health.url",
    ),
    (
        "health-url-newline",
        app_set("health.url", "https://web.example.com/healthz\n"),
        "apps[0] (web).health.url",
    ),
    ("health-status", app_set("health.expectedStatus", 99), "apps[0] (web).health.expectedStatus"),
    ("health-attempts", app_set("health.attempts", 0), "apps[0] (web).health.attempts"),
    ("health-latency", app_set("health.maxLatencyMs", 0), "apps[0] (web).health.maxLatencyMs"),
    ("health-threshold", app_set("health.successThreshold", 11), "apps[0] (web).health.successThreshold"),
    ("health-budget", app_set("health.attempts", 500), "apps[0] (web).health"),
    ("health-verify", app_set("health.verifyTls", "no"), "apps[0] (web).health.verifyTls"),
    ("health-header-name", app_set("health.headers", {"X Key": "v"}), "apps[0] (web).health.headers.X Key"),
    (
        "health-header-value",
        app_set("health.headers", {"X-Key": "caf\u00e9-value"}),
        "apps[0] (web).health.headers.X-Key",
    ),
    ("health-unknown-key", app_set("health.timeout", 5), "apps[0] (web).health.timeout"),
    ("context-root", app_set("image.context", "/"), "apps[0] (web).image.context"),
    ("context-up", app_set("image.context", "../.."), "apps[0] (web).image.context"),
    ("context-up-inside", app_set("image.context", "app/../../app"), "apps[0] (web).image.context"),
    ("dockerfile-absolute", app_set("image.dockerfile", "/etc/passwd"), "apps[0] (web).image.dockerfile"),
    ("dockerfile-up", app_set("image.dockerfile", "../Dockerfile"), "apps[0] (web).image.dockerfile"),
    ("secret-headers-app", top_set("healthHeaders", {"wbe": {"X-Key": "v"}}), "healthHeaders.wbe"),
    ("secret-headers-value", top_set("healthHeaders", {"web": {"X-Key": 7}}), "healthHeaders.web.X-Key"),
    ("secret-headers-shape", top_set("healthHeaders", ["web"]), "healthHeaders"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("corpus"))


def _check_error(project: Path, text: str, key: str, capsys: pytest.CaptureFixture[str]) -> str:
    write_stack(project, STACK, text)
    code = check_stack(project, STACK)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}:\n{out}{err}"
    assert out == "", out
    lines = err.rstrip("\n").splitlines()
    assert lines[0].startswith(f"error: {FILE}"), err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    assert all(line.startswith("  - ") for line in lines[1:]), f"not one error block:\n{err}"
    assert key in err, f"{key!r} not named in:\n{err}"
    assert "Traceback" not in err and "ExceptionGroup" not in err
    # Nothing registered: the file or the config is refused before the program declares anything.
    with pytest.raises((StackFileError, ProgramFailed)) as failed:
        simulate(STACK, project_dir=project, password="pw-corpus")
    if isinstance(failed.value, ProgramFailed):
        assert isinstance(failed.value.cause, ConfigError), failed.value.cause
        assert failed.value.resources == [], [r.urn for r in failed.value.resources]
    return err


@pytest.mark.grpc
def test_the_base_file_is_valid(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus' starting point passes, so each case fails for its own defect."""
    write_stack(project, STACK, BASE_STACK_YAML)
    code = check_stack(project, STACK)
    out, err = capsys.readouterr()
    assert code == 0 and err == "", f"{out}{err}"
    assert out.splitlines()[-1].startswith(f"PASS: stack {STACK}"), out
    assert yaml.safe_load(BASE_STACK_YAML)["config"] == base_config()


@pytest.mark.grpc
@pytest.mark.parametrize(("case", "text", "key"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_a_file_the_check_cannot_read(
    project: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, key: str
) -> None:
    err = _check_error(project, text, key, capsys)
    assert len(err.strip().splitlines()) == 1, f"{case}: one error line expected:\n{err}"
    assert re.match(rf"error: {re.escape(FILE)}:\d+:", err), f"{case}: the file and the line first:\n{err}"


@pytest.mark.grpc
@pytest.mark.parametrize(("case", "mutate", "key"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_file_whose_config_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], case: str, mutate: Mutate, key: str
) -> None:
    config = base_config()
    mutate(config)
    err = _check_error(project, yaml.safe_dump({"config": config}, sort_keys=False), key, capsys)
    assert "(1 problem)" in err, f"{case}: exactly one problem expected:\n{err}"
    assert f"  - gitops-deploy:{key}: " in err, err
    assert TOKEN not in err, err
    if case.startswith("health-userinfo"):
        assert "userinfo" in err and "gitops-deploy:healthHeaders" in err, err


@pytest.mark.grpc
@pytest.mark.parametrize(("case", "text", "said"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_a_file_over_a_limit_is_told_which(
    project: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, said: str
) -> None:
    err = _check_error(project, text, FILE, capsys)
    assert len(err.strip().splitlines()) == 1, f"{case}: one error line expected:\n{err}"
    assert said in err, f"{case}: {said!r} not in:\n{err}"
    if case != "nodes-through-aliases":
        assert "alias" not in err, f"{case}: no alias in the file:\n{err}"


def test_the_corpus_is_at_least_sixty_files() -> None:
    assert len(TEXT_CASES) + len(CONFIG_CASES) + len(LIMIT_CASES) + len(LINK_CASES) >= 60


# (id, link in the project, its target ("SECRET": a file outside the project), the key, what the error says)
LINK_CASES: list[tuple[str, str, str, str, str]] = [
    ("context-link", "ctx-out", "/", "apps[0] (web).image.context", "a symlink takes it to /"),
    ("dockerfile-link", "app/Outside.Dockerfile", "SECRET", "apps[0] (web).image.dockerfile", "secret.txt"),
    ("file-link", "app/leak", "SECRET", "apps[0] (web).image.context", "app/leak -> '/"),
    ("dir-link", "app/host", "/etc", "apps[0] (web).image.context", "app/host -> '/etc' points outside"),
    ("ignore-link", "app/.dockerignore", "SECRET", "apps[0] (web).image.context", "app/.dockerignore -> '/"),
    ("dangling-link", "app/gone", "nowhere", "apps[0] (web).image.context", "app/gone -> 'nowhere' points"),
]


LINK_IDS = [c[0] for c in LINK_CASES]


@pytest.mark.grpc
@pytest.mark.parametrize(("case", "link", "target", "key", "says"), LINK_CASES, ids=LINK_IDS)
def test_a_build_input_that_leaves_the_repository(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    link: str,
    target: str,
    key: str,
    says: str,
) -> None:
    """Argo CD refuses out-of-bounds symlinks; so does the build: one config error, nothing outside read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("FROM scratch\nLABEL token=s3cr3t-outside-the-repo\n")
    config = base_config()
    image = config["gitops-deploy:apps"][0]["image"]
    if case == "context-link":
        image["context"] = link
    elif case == "dockerfile-link":
        image["dockerfile"] = link
    (project / link).symlink_to(secret if target == "SECRET" else target)
    try:
        err = _check_error(project, yaml.safe_dump({"config": config}, sort_keys=False), key, capsys)
    finally:
        (project / link).unlink()
    assert "(1 problem)" in err and says in err, f"{case}:\n{err}"
    assert f"  - gitops-deploy:{key}: " in err, err
    assert "s3cr3t" not in err, err
