"""The policy check's verdict: findings, render and build results, counts and an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from policy_check.analyzer_client import Diagnostic
from policy_check.findings import Finding, blocks
from policy_check.render_common import RenderResult

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
"""0: nothing blocks the change; 1: a mandatory finding, render, build or smoke failure; 2: bad input."""

Format = Literal["table", "json", "markdown"]
FORMATS: tuple[Format, ...] = ("table", "json", "markdown")


@dataclass(frozen=True)
class ImageRow:
    """One app's image under `--build`: its measured size, why it has none, or its build error."""

    app: str
    image: str
    """`repository:tag`, as pulumi-docker names the build."""
    dockerfile: str
    """Project-relative path of the Dockerfile."""
    status: str
    """measured, not-measured or error."""
    detail: str
    """The size and how it was measured; the reason it was not; or the build error."""
    size_bytes: int | None = None


@dataclass(frozen=True)
class SmokeRow:
    """One app's smoke run under `--build`: its image started alone and probed as the health gate does."""

    app: str
    image: str
    dockerfile: str
    status: str
    """passed, failed, cant-judge (no engine) or skipped (`smoke: false`, --no-smoke, a failed build)."""
    detail: str
    """What the probes found, why it failed, or why it did not run; secrets scrubbed."""
    cause: str = ""
    """A failure's class: exited, did not start, wrong status, too slow, never answered, out of time."""
    exit_code: int | None = None
    logs: tuple[str, ...] = ()
    """The container's last log lines on a failure, scrubbed and cut."""
    seconds: float = 0.0


@dataclass
class CheckReport:
    """Everything one policy check found."""

    stack: str
    resources: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    renders: list[RenderResult] = field(default_factory=list)
    rendering: bool = True
    images: list[ImageRow] = field(default_factory=list)
    """Each built app's image; measured only with --build."""
    building: bool = False
    """Whether --build was given."""
    smoke: list[SmokeRow] = field(default_factory=list)
    """Each built app's smoke run; run only with --build."""
    findings: list[Finding] = field(default_factory=list)
    """The violations grouped by root cause (policy_check/findings.py); filled by the check."""
    app_keys: dict[str, str] = field(default_factory=dict)
    """The stack's apps in config order, each with its config key (`gitops-deploy:apps[1] (api)`)."""
    stack_file: str | None = None
    """The stack file as the user knows it (`Pulumi.staging.yaml`); None for a config given in code."""
    policy_file: str | None = None
    """The policy config file, relative to the project where it lies inside it."""
    stack_outputs: str | None = None
    """Where the failed-release record was read from (`--stack-outputs`), or None: not checked."""
    labels: dict[str, str] = field(default_factory=dict)
    """URN -> `Kind 'namespace/name'` of every judged resource, as the report names them."""

    @property
    def violations(self) -> list[Diagnostic]:
        """Diagnostics that are violations (not "can't judge yet" notes)."""
        return [d for d in self.diagnostics if not d.cant_judge]

    @property
    def mandatory(self) -> list[Diagnostic]:
        """Violations that block a deployment."""
        return [d for d in self.violations if blocks(d.level)]

    @property
    def cant_judge(self) -> list[Diagnostic]:
        """The "can't judge yet" notes, in a stable order."""
        notes = [d for d in self.diagnostics if d.cant_judge]
        return sorted(notes, key=lambda d: (d.policy, d.urn, d.message))

    @property
    def smoke_failures(self) -> list[SmokeRow]:
        """Apps whose image did not start, or whose endpoint failed the gate's probes, under --build."""
        return [s for s in self.smoke if s.status == "failed"]

    @property
    def smoke_unjudged(self) -> list[SmokeRow]:
        """Smoke runs that could not run (no Docker Engine): "can't judge yet"."""
        return [s for s in self.smoke if s.status == "cant-judge"]

    @property
    def render_errors(self) -> list[RenderResult]:
        """Applications whose chart or overlay failed to render."""
        return [r for r in self.renders if r.status == "error"]

    @property
    def not_rendered(self) -> list[RenderResult]:
        """Applications whose objects were not rendered (another repository, a remote dependency...):
        their objects are not judged, so each counts as "can't judge yet"."""
        return [r for r in self.renders if r.status == "not-rendered"]

    @property
    def build_errors(self) -> list[ImageRow]:
        """Apps whose image failed to build under --build."""
        return [i for i in self.images if i.status == "error"]

    @property
    def exit_code(self) -> int:
        """1 on any mandatory violation or finding (the check's own too), render, build or smoke failure."""
        blocking = self.mandatory or any(f.blocking for f in self.findings)
        failed = self.render_errors or self.build_errors or self.smoke_failures
        return EXIT_FAILED if blocking or failed else EXIT_OK

    @property
    def verdict(self) -> str:
        """PASS or FAIL."""
        return "FAIL" if self.exit_code else "PASS"

    def counts(self) -> dict[str, int]:
        """Findings by level (root causes, not diagnostics), errors and notes."""
        return {
            "mandatory": sum(1 for f in self.findings if f.blocking),
            "advisory": sum(1 for f in self.findings if not f.blocking),
            "renderErrors": len(self.render_errors),
            "buildErrors": len(self.build_errors),
            "smokeFailures": len(self.smoke_failures),
            "cantJudge": len(self.cant_judge) + len(self.not_rendered) + len(self.smoke_unjudged),
            "resources": self.resources,
            "renderedObjects": sum(len(r.objects) for r in self.renders),
        }

    def tally(self, mark: str = "") -> str:
        """The counts in words, the mandatory count between `mark`s (`**` in Markdown)."""
        c = self.counts()
        errors = f"{c['renderErrors']} render error(s)"
        if self.building:
            errors += f", {c['buildErrors']} build error(s), {c['smokeFailures']} smoke failure(s)"
        mandatory = f"{mark}{c['mandatory']} mandatory{mark}"
        return f"{mandatory}, {c['advisory']} advisory; {errors}; {c['cantJudge']} can't judge yet"

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        return f"{self.verdict}: stack {self.stack}: {self.tally()}"
