"""The rules a JSON Schema cannot state: across keys, against the registry, the repository and the disk.

Each rule reads only values the schema passed (`Values.get` gives None for the rest), so one bad value
is one problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi

from model.config_reader import KeyPath, Reader, app_key
from model.config_schema import (
    ARGOCD_PROJECT,
    HEADERS_KEY,
    NAMESPACE,
    PASSWORD_KEY,
    REPO_PATH,
    SOAKED_KEY,
    UNTRUSTED_REGISTRY,
    default,
)
from model.content_tag import ContextError, check_context
from model.health_settings import cross_problems, limit
from model.http_origin import (
    HEADER_NAME,
    HEADER_VALUE,
    USERINFO_PROBLEM,
    redact_url,
    server_problem,
    url_problem,
)
from model.image_ref import REPO_DIGEST
from model.k8s_names import DNS1035_LABEL, LABEL_MAX
from model.names import DERIVED_NAME_SUFFIXES

APP_NAME_MAX = LABEL_MAX - max(len(suffix) for suffix in DERIVED_NAME_SUFFIXES)
"""The longest app name whose derived names (`<app>-registry`, the overlay's `<app>-app`) all stay
63-character labels; a Service's must also start with a letter (model/k8s_names.py)."""


class Values:
    """The stack's values as the schema judged them: a value it refused reads as None."""

    def __init__(self, raw: Mapping[str, Any], failed: set[KeyPath]) -> None:
        self.raw, self.failed = raw, failed

    def get(self, *path: str | int, fill: bool = True) -> Any:
        """The value at `path`, its default when unset (`fill`); None when it or what holds it was refused."""
        if self.failed and any(path[:i] in self.failed for i in range(1, len(path) + 1)):
            return None
        node: Any = self.raw
        for part in path:
            if isinstance(part, int):
                node = node[part] if isinstance(node, list) and part < len(node) else None
            else:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                return default(path) if fill else None
        return node


def registry_server(r: Reader, v: Values) -> str | None:
    """The registry host, when it is one; what precedes an '@' may be a credential: none of it is shown."""
    server = v.get("registry", "server")
    if server is not None and "@" in server:
        host = server.rpartition("@")[2].split("/", 1)[0]
        r.problem(
            "registry.server",
            f"userinfo (not shown: it may be a credential) before the host '{host}'",
            f"a registry host with an optional port; the password goes in {NAMESPACE}:{PASSWORD_KEY}, "
            "kept encrypted",
        )
        return None
    if server is not None and (problem := server_problem(server)) is not None:
        r.problem(
            "registry.server",
            f"{server!r} ({problem})",
            "a registry host with an optional port from 1 to 65535 and no scheme, "
            "for example 'registry.example.com' or 'localhost:5000'",
        )
        return None
    return server


def stack_rules(r: Reader, v: Values, stack: str | None) -> None:
    """Rules across the stack-wide keys: argocd, cluster, build and promote."""
    if v.get("argocd", "manageProject") and v.get("argocd", "project") == ARGOCD_PROJECT:
        r.problem(
            "argocd.manageProject",
            f"true with project {ARGOCD_PROJECT!r}",
            f"a dedicated project name in {NAMESPACE}:argocd.project: the default project is "
            "shared and unfenced, so it cannot be managed per stack",
        )
    cluster = v.get("cluster")
    if isinstance(cluster, Mapping):
        if "name" in cluster and "server" in cluster:
            r.problem(
                "cluster",
                "both 'name' and 'server'",
                "exactly one of them: Argo CD rejects a destination with both",
            )
        elif "name" not in cluster and "server" not in cluster:
            r.problem(
                "cluster",
                "neither 'name' nor 'server'",
                "exactly one of 'name' (a cluster registered in Argo CD) or 'server' (its API URL)",
            )
        server = v.get("cluster", "server")
        if server is not None and (problem := url_problem(server, ("https",))) is not None:
            r.problem("cluster.server", f"{redact_url(server)!r} ({problem})", "an https:// API server URL")
    ignore = v.get("build", "ignore") or []
    if v.get("build", "trustedRegistries") and UNTRUSTED_REGISTRY in ignore:
        r.problem(
            f"build.ignore[{ignore.index(UNTRUSTED_REGISTRY)}]",
            f"{UNTRUSTED_REGISTRY!r} with trustedRegistries set",
            f"no {UNTRUSTED_REGISTRY} in ignore: it is the rule that enforces trustedRegistries "
            "(remove trustedRegistries to allow any registry)",
        )
    source = v.get("promote", "from")
    own = stack is not None and source is not None and source.rsplit("/", 1)[-1] == stack
    if own and ("/" not in source or _own(source)):
        r.problem("promote.from", repr(source), "another stack: a stack cannot promote from itself")


def _own(qualified: str) -> bool:
    """A qualified name is this stack's own when its org and project are the running ones."""
    org, project, _ = qualified.split("/")
    return project == pulumi.get_project() and org == (pulumi.get_organization() or org)


def app_rules(r: Reader, v: Values, server: str | None, project_dir: Path) -> None:
    """Every app's rules, and names unique in the stack."""
    items = v.get("apps") or []
    seen: dict[str, int] = {}
    walked: dict[tuple[Path, Path], str | None] = {}  # each build context walked once a parse
    for i, item in enumerate(items):
        key = app_key(i, item)
        name = v.get("apps", i, "name")
        if name is not None and app_name(r, f"{key}.name", name) is not None:
            if name in seen:
                first = app_key(seen[name], items[seen[name]])
                r.problem(f"{key}.name", repr(name), f"a name no other app uses ({first} already has it)")
            else:
                seen[name] = i
        _image(r, v, i, f"{key}.image", server, project_dir, walked)
        _source(r, v, i, f"{key}.source")
        _health(r, v, i, f"{key}.health")


def soaked_rules(r: Reader, v: Values) -> None:
    """Each soaked digest is of an app of the stack, and of that app's repository."""
    soaked = v.get(SOAKED_KEY) or {}
    items = v.get("apps") or []
    repositories = {
        v.get("apps", i, "name"): v.get("apps", i, "image", "repository") for i in range(len(items))
    }
    for app in soaked:
        key, digest = f"{SOAKED_KEY}.{app}", v.get(SOAKED_KEY, app)
        if digest is None:
            continue  # the schema refused it already
        if app not in repositories:
            known = ", ".join(sorted(str(a) for a in repositories if a is not None)) or "none"
            r.problem(key, f"app {str(app)!r}", f"an app of {NAMESPACE}:apps ({known})")
            continue
        match, repository = REPO_DIGEST.fullmatch(digest), repositories[app]
        if match is not None and repository is not None and match.group("repo") != repository:
            r.problem(
                key, repr(digest), f"a digest of the app's repository, '{repository}@sha256:<64 hex digits>'"
            )


def app_name(r: Reader, key: str, name: str) -> str | None:
    """A DNS-1123 label short enough, and starting with a letter, so every name derived from it is valid."""
    if len(name) > APP_NAME_MAX or DNS1035_LABEL.problem(name):
        r.problem(
            key,
            f"{name!r} ({len(name)} characters)",
            f"at most {APP_NAME_MAX} characters starting with a letter: Kubernetes names such as "
            f"'<app>{max(DERIVED_NAME_SUFFIXES, key=len)}' are derived from it and must stay "
            f"{LABEL_MAX}-character DNS-1035 labels",
        )
        return None
    return name


def _image(
    r: Reader,
    v: Values,
    i: int,
    key: str,
    server: str | None,
    project_dir: Path,
    walked: dict[tuple[Path, Path], str | None],
) -> None:
    repository = v.get("apps", i, "image", "repository")
    if repository is not None and server is not None:
        host, _, path = repository.partition("/")
        if host != server or not path:
            expected = f"a repository on the stack's registry '{server}', for example '{server}/team/app'"
            r.problem(f"{key}.repository", repr(repository), expected)
            repository = None
        elif not REPO_PATH.fullmatch(path):
            r.problem(
                f"{key}.repository",
                repr(repository),
                "a repository path of lowercase letters, digits and separators, without a "
                "tag or digest (the program tags and pins images itself)",
            )
            repository = None
    pin = v.get("apps", i, "image", "pin")
    if pin is not None:
        match = REPO_DIGEST.fullmatch(pin)
        if match is None or (repository is not None and match.group("repo") != repository):
            shown = repository or "<repository>"
            expected = f"a digest reference of this app's repository, '{shown}@sha256:<64 hex digits>'"
            r.problem(f"{key}.pin", repr(pin), expected)
            pin = None
    context_s = v.get("apps", i, "image", "context")
    dockerfile_s = v.get("apps", i, "image", "dockerfile")
    dkey = f"{key}.dockerfile" if dockerfile_s else f"{key}.dockerfile (default <context>/Dockerfile)"
    if context_s is None or not _in_repository(r, f"{key}.context", context_s, "folder", project_dir):
        return
    context = (project_dir / context_s).resolve()
    dockerfile = (project_dir / dockerfile_s).resolve() if dockerfile_s else context / "Dockerfile"
    if not _in_repository(r, dkey, dockerfile_s or "Dockerfile", "file", project_dir, dockerfile):
        return
    if pin is not None:
        return  # a pinned app is not built, so its build inputs may be gone (rollback to an old digest)
    if not context.is_dir():
        r.problem(f"{key}.context", repr(context_s), f"an existing build directory; looked for {context}")
    elif not dockerfile.is_file():
        r.problem(
            dkey, repr(dockerfile_s or "Dockerfile"), f"an existing Dockerfile; looked for {dockerfile}"
        )
    else:
        if (context, dockerfile) not in walked:
            walked[context, dockerfile] = _context_problem(context, dockerfile, project_dir)
        if (problem := walked[context, dockerfile]) is not None:
            r.problem(f"{key}.context", repr(context_s), problem)


def _context_problem(context: Path, dockerfile: Path, project_dir: Path) -> str | None:
    """What pulumi-docker would fail on, and symlinks out of the repository, found here first."""
    try:
        check_context(context, dockerfile, project_dir)
    except ContextError as exc:
        return str(exc)
    return None


def _relative(r: Reader, key: str, path: str, what: str) -> bool:
    """The rule for a path in the repository as written: relative, and without '..'."""
    if path.startswith("/") or ".." in Path(path).parts:
        r.problem(key, repr(path), f"a {what} relative to the repository root, without '..'")
        return False
    return True


def _in_repository(
    r: Reader, key: str, path: str, what: str, project_dir: Path, resolved: Path | None = None
) -> bool:
    """`_relative`, and still inside the repository once symlinks are resolved."""
    if not _relative(r, key, path, what):
        return False
    resolved = (resolved or project_dir / path).resolve()
    root = project_dir.resolve()
    if resolved != root and root not in resolved.parents:
        r.problem(key, repr(path), f"a {what} inside the repository; a symlink takes it to {resolved}")
        return False
    return True


def _credential(url: str) -> bool:
    """A Git URL carries a credential: any userinfo over http(s), a password over ssh (`git@` is a user)."""
    try:
        split = urlsplit(url)
    except ValueError:
        return "@" in url
    if split.scheme in ("http", "https"):
        return "@" in split.netloc
    return split.scheme == "ssh" and ":" in split.netloc.rpartition("@")[0]


def _source(r: Reader, v: Values, i: int, key: str) -> None:
    repo_url = v.get("apps", i, "source", "repoURL")
    if repo_url is not None and _credential(repo_url):
        # The Application carries it: a preview's diff, the cluster and the state would show it.
        r.problem(
            f"{key}.repoURL",
            f"{redact_url(repo_url)!r} ({USERINFO_PROBLEM})",
            "a Git URL without a token or password; Argo CD reads repository credentials from its own "
            "repository Secrets",
        )
    path = v.get("apps", i, "source", "path")
    if path is not None:
        _relative(r, f"{key}.path", path, "folder")
    if v.get("apps", i, "source", "type") == "helm":
        for name in ("imageName", "workload"):
            if (given := v.get("apps", i, "source", name)) is not None:
                r.problem(f"{key}.{name}", repr(given), f"no {name} for a helm source (kustomize only)")


def _health(r: Reader, v: Values, i: int, key: str) -> None:
    url = v.get("apps", i, "health", "url")
    rule = limit("url")
    if url is not None and (problem := rule.problem(url)) is not None:
        expected = rule.expected
        if problem == USERINFO_PROBLEM:
            # The URL is shown in reports, errors and records; a header stays a secret.
            expected += f"; send credentials as a header in {NAMESPACE}:{HEADERS_KEY}, kept encrypted"
        r.problem(f"{key}.url", f"{redact_url(url)!r} ({problem})", expected)
    for name, text in (v.get("apps", i, "health", "headers") or {}).items():
        if not HEADER_NAME.fullmatch(str(name)):
            r.problem(f"{key}.headers.{name}", "an invalid name", "a name of letters, digits and '-'")
            break
        if isinstance(text, str) and not HEADER_VALUE.fullmatch(text):
            # Never quoted: the value is sent as a secret, and httpx could not encode it anyway.
            r.problem(f"{key}.headers.{name}", "a value that is not printable ASCII", "printable ASCII text")
            break
    got = [
        v.get("apps", i, "health", k)
        for k in ("attempts", "intervalSeconds", "timeoutSeconds", "successThreshold")
    ]
    for field, given, expected in cross_problems(*got):
        # The threshold is that setting's problem; the worst case belongs to the health block as a whole.
        r.problem(f"{key}.successThreshold" if field == "success_threshold" else key, given, expected)


def secret_header_problems(apps: Sequence[str], raw: Any) -> list[str]:
    """Shape problems of `gitops-deploy:healthHeaders` ({app: {header: value}}); values are never shown."""
    key = f"{NAMESPACE}:{HEADERS_KEY}"
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"{key}: expected an object of app name -> headers"]
    problems = []
    for app, headers in raw.items():
        if app not in apps:
            close = difflib.get_close_matches(str(app), list(apps), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key}.{app}: no app of that name in {NAMESPACE}:apps ({', '.join(apps)}){hint}")
        elif not isinstance(headers, Mapping):
            problems.append(f"{key}.{app}: expected an object of header name -> string value")
        else:
            for name, value in headers.items():
                if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                    problems.append(f"{key}.{app}: header name {str(name)!r} is not an HTTP token")
                elif not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
                    shown = f"{key}.{app}.{name}"
                    problems.append(
                        f"{shown}: expected a string of printable ASCII characters (value not shown)"
                    )
    return problems
