"""The failed-release record: which content of which app failed its health gate, kept so it never ships
again; it lives in the stack's own output (docs/engine-rules.md#reading-a-stacks-own-outputs)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi

from model.errors import GitopsError
from model.http_origin import redact_urls
from model.image_ref import is_repo_digest

RECORD_OUTPUT = "failedReleases"
"""The stack output that holds the record."""
RECORD_KEY = "failedReleases"
"""Runtime config key (`gitops-deploy:failedReleases`) through which `python -m deploy` passes the record."""
ALLOW_KEY = "allowFailedReleases"
"""Config key (`gitops-deploy:allowFailedReleases`): `<app>:<content tag>` releases allowed to ship again."""
MAX_PER_APP = 10
"""Most failed releases kept per app (the oldest go first): a bound on the output's size."""
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
"""The engine's built-in invoke behind StackReference (pkg/resource/deploy/builtins.go)."""

RELEASE_REF = re.compile(r"(?P<app>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?):(?P<tag>ctx-[0-9a-f]{12})")
"""`<app>:<content tag>`, as an override names one release."""
_TAG = re.compile(r"ctx-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass(frozen=True)
class FailedRelease:
    """One release that failed its health gate and was rolled back."""

    app: str
    """The app's name."""
    tag: str
    """The content tag of the image that failed (`ctx-<12 hex>`)."""
    digest: str | None
    """`repository@sha256:...` that failed, when the deploy saw it."""
    failed_at: str
    """When it failed, UTC ISO 8601 (`2026-05-01T12:00:00Z`)."""
    reason: str
    """The first line of the health report."""

    @property
    def ref(self) -> str:
        """`<app>:<tag>`, the form an override uses."""
        return f"{self.app}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        """The output's shape for one release."""
        return {"tag": self.tag, "digest": self.digest, "failedAt": self.failed_at, "reason": self.reason}


@dataclass(frozen=True)
class Problem:
    """A malformed part of a record: where, what was given, what was expected."""

    path: str
    given: str
    expected: str


@dataclass(frozen=True)
class FailedReleaseRecord:
    """Every recorded failed release of a stack, oldest first per app."""

    releases: tuple[FailedRelease, ...] = ()

    def find(self, app: str, tag: str) -> FailedRelease | None:
        """The recorded failure of this app's content, if any."""
        return next((r for r in self.releases if r.app == app and r.tag == tag), None)

    def add(self, release: FailedRelease) -> FailedReleaseRecord:
        """The record with `release` added (replacing an older entry of the same content), capped per app."""
        kept = [r for r in self.releases if r.ref != release.ref]
        own = [r for r in kept if r.app == release.app]
        drop = {r.ref for r in own[: max(0, len(own) + 1 - MAX_PER_APP)]}
        return FailedReleaseRecord((*(r for r in kept if r.ref not in drop), release))

    def without(self, refs: Iterable[str]) -> FailedReleaseRecord:
        """The record without the releases named `<app>:<tag>`."""
        gone = set(refs)
        return FailedReleaseRecord(tuple(r for r in self.releases if r.ref not in gone))

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The output's shape: app -> releases, oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for release in self.releases:
            out.setdefault(release.app, []).append(release.to_json())
        return out

    @classmethod
    def from_json(cls, value: Any) -> tuple[FailedReleaseRecord, list[Problem]]:
        """Parse the output's shape; malformed entries are left out and reported, never fatal."""
        if value is None:
            return cls(), []
        if not isinstance(value, Mapping):
            return cls(), [Problem("", _kind(value), "an object of app name -> list of failed releases")]
        releases: list[FailedRelease] = []
        problems: list[Problem] = []
        for app, entries in value.items():
            if not isinstance(entries, list):
                problems.append(Problem(f".{app}", _kind(entries), "a list of failed releases"))
                continue
            for i, entry in enumerate(entries):
                release = _release(str(app), entry)
                if isinstance(release, Problem):
                    problems.append(replace(release, path=f".{app}[{i}]{release.path}"))
                else:
                    releases.append(release)
        record = cls()
        for release in releases:
            record = record.add(release)
        return record, problems


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _release(app: str, entry: Any) -> FailedRelease | Problem:
    if not isinstance(entry, Mapping):
        return Problem("", _kind(entry), "an object {tag, digest, failedAt, reason}")
    tag, digest, failed_at = entry.get("tag"), entry.get("digest"), entry.get("failedAt")
    reason = entry.get("reason", "")
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        return Problem(".tag", _kind(tag), "a content tag 'ctx-<12 hex digits>'")
    if digest is not None and not is_repo_digest(digest):
        return Problem(".digest", _kind(digest), "null or '<repository>@sha256:<64 hex digits>'")
    if not isinstance(failed_at, str) or not _TIMESTAMP.fullmatch(failed_at):
        return Problem(".failedAt", _kind(failed_at), "a UTC time such as '2026-05-01T12:00:00Z'")
    if not isinstance(reason, str):
        return Problem(".reason", _kind(reason), "a string")
    # A record an older version wrote may quote a URL with userinfo; it is kept without it.
    return FailedRelease(app, tag, digest, failed_at, redact_urls(reason))


def blocked(
    record: FailedReleaseRecord, built: Mapping[str, str], allowed: Iterable[str] = ()
) -> list[FailedRelease]:
    """The recorded failures that the apps built now (app -> content tag) would ship again, unless allowed."""
    allow = set(allowed)
    found = (record.find(app, tag) for app, tag in built.items())
    return [r for r in found if r is not None and r.ref not in allow]


def blocked_message(releases: Iterable[FailedRelease], stack: str) -> str:
    """The one message `python -m deploy`, the program (preview, up) and the CLI-free check all print."""
    lines = ["a release that failed its health gate would ship again; stopped before the update:"]
    for r in releases:
        what = f"{r.tag} ({r.digest})" if r.digest else r.tag
        lines += [
            f"  - {r.app}: release {what} failed its health gate at {r.failed_at} and was rolled back"
            + (f" ({r.reason})" if r.reason else ""),
            f"    the app's build context still gives content tag {r.tag}. Change the source; or, once the",
            "    cause outside the image is fixed, allow this release to ship again with",
            f"      python -m deploy up --stack {stack} --allow-failed-release {r.ref}",
            f"    or, for a plain `pulumi up`: pulumi config set --stack {stack} --path "
            f"'gitops-deploy:{ALLOW_KEY}[0]' {r.ref}",
        ]
    return "\n".join(lines)


class FailedReleaseBlocked(GitopsError, pulumi.RunError):
    """The program stops before registering anything: an app would ship a release that failed before."""

    def __init__(self, releases: Iterable[FailedRelease], stack: str) -> None:
        self.releases = tuple(releases)
        super().__init__(blocked_message(self.releases, stack))


def own_stack_name() -> str:
    """This stack as a StackReference names it: `org/project/stack` on Pulumi Cloud; the bare name on a DIY
    backend (org `organization`) or an engine that sends no org (docs/engine-rules.md#stack-references)."""
    org = pulumi.get_organization()
    if not org or org == "organization":
        return pulumi.get_stack()
    return f"{org}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read_own_outputs() -> Mapping[str, Any] | None:
    """This stack's outputs as its last update left them; None, with a warning, when they cannot be read."""
    name = own_stack_name()
    try:
        result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
    except Exception as err:
        pulumi.log.warn(
            f"could not read stack {name}'s outputs ({err}); its {RECORD_OUTPUT} record is not enforced and "
            "no soaked digest is carried over in this run"
        )
        return None
    value = result.value if isinstance(result.value, Mapping) else {}
    outputs = value.get("outputs")
    return outputs if isinstance(outputs, Mapping) else {}


def read_own_record(outputs: Mapping[str, Any] | None) -> FailedReleaseRecord:
    """The record in this stack's last outputs; a shape problem is a warning, not a failed run."""
    record, problems = FailedReleaseRecord.from_json((outputs or {}).get(RECORD_OUTPUT))
    for p in problems:
        pulumi.log.warn(
            f"stack output {RECORD_OUTPUT}{p.path}: got {p.given}; expected {p.expected}; ignored"
        )
    return record
