"""Which repository the check renders from: this checkout's, named by an option, a stack key or git."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from model.names import PROJECT

REPO_URL_KEY = f"{PROJECT}:argocd.repoURL"
"""The stack key naming this repository as Argo CD reads it (Pulumi.yaml documents it)."""

GIT_TIMEOUT_SECONDS = 5.0
"""Upper bound on `git remote get-url origin`, which reads the checkout's config and never the network."""

_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//)\S+)$")
"""`git@github.com:org/repo.git`, Git's scp-like SSH form."""


def normalize_repo_url(url: str) -> str | None:
    """`host/path` of a Git URL, lowercased, without scheme, user, default port, `.git` or trailing `/`
    (docs/engine-rules.md#repository-urls); None when `url` is not a Git URL."""
    text = url.strip()
    scp = _SCP_LIKE.match(text) if "://" not in text else None
    if scp:
        host, path, port = scp["host"], scp["path"], None
    else:
        try:
            parts = urlsplit(text)
            host, path, port = parts.hostname or "", parts.path, parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https", "ssh", "git") or not host:
            return None
        if port in (80, 443, 22):
            port = None
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return None
    return f"{host}{f':{port}' if port else ''}/{path}".lower()


@dataclass(frozen=True)
class Repository:
    """This checkout as Argo CD names it: the normalized URL and where that came from."""

    url: str | None
    """`github.com/org/repo`, or None when nothing names this repository."""
    origin: str
    """`--repo-url`, the stack key, `git remote origin`, or why it is unknown."""

    def holds(self, repo_url: Any) -> bool:
        """True when `repo_url` (an Application's `spec.source.repoURL`) is this repository."""
        return self.url is not None and isinstance(repo_url, str) and normalize_repo_url(repo_url) == self.url

    def foreign_reason(self, repo_url: Any) -> str:
        """Why an Application reading `repo_url` is not rendered: a "can't judge yet" line."""
        if self.url is None:
            return (
                f"can't judge yet: which repository this checkout is, is unknown ({self.origin}); set "
                f"{REPO_URL_KEY} or pass --repo-url"
            )
        theirs = "no repository"
        if isinstance(repo_url, str):  # normalized, a URL shows no user, password or token
            theirs = normalize_repo_url(repo_url) or "an unreadable URL"
        return (
            f"can't judge yet: the source is another repository, {theirs}; only this repository, "
            f"{self.url} ({self.origin}), is rendered"
        )


def _git_origin(project_dir: Path) -> str | None:
    """`git remote get-url origin` of the checkout, or None (not a checkout, no origin, no git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(project_dir), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def this_repository(
    project_dir: Path, values: Mapping[str, Any] | None = None, override: str | None = None
) -> Repository:
    """This repository: `--repo-url`, else the stack key, else the checkout's origin remote."""
    argocd = (values or {}).get(f"{PROJECT}:argocd")
    configured = argocd.get("repoURL") if isinstance(argocd, Mapping) else None
    for origin, url in (("--repo-url", override), (REPO_URL_KEY, configured)):
        if isinstance(url, str) and url:
            return Repository(normalize_repo_url(url), origin)
    remote = _git_origin(project_dir)
    if remote is not None:
        return Repository(normalize_repo_url(remote), "git remote origin")
    return Repository(None, "no --repo-url, no stack key and no origin remote")
