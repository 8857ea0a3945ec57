"""The policy check's verdict: a table of violations and render results, a summary, an exit code."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from dataclasses import dataclass, field

from policies.analyzer_client import Diagnostic

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class RenderedRow:
    """One object rendered from an Application."""

    type: str
    name: str
    urn: str
    scaled_by: str | None = None
    """The HPA that owns this workload's omitted `replicas`; minimum-replicas judges that HPA instead."""


@dataclass(frozen=True)
class RenderStatus:
    """What rendering did for one Application."""

    application: str
    application_urn: str
    engine: str
    path: str
    status: str
    """rendered, not-rendered or error."""
    reason: str
    objects: tuple[RenderedRow, ...] = ()
    seconds: float = 0.0
    """Render time."""


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


@dataclass
class CheckReport:
    """Everything one policy check found."""

    stack: str
    resources: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    renders: list[RenderStatus] = field(default_factory=list)
    rendering: bool = True
    images: list[ImageRow] = field(default_factory=list)
    """Each built app's image; measured only with --build."""
    building: bool = False
    """Whether --build was given."""

    @property
    def violations(self) -> list[Diagnostic]:
        """Diagnostics that are violations (not "can't judge yet" notes)."""
        return [d for d in self.diagnostics if not d.cant_judge]

    @property
    def mandatory(self) -> list[Diagnostic]:
        """Violations that block a deployment."""
        return [d for d in self.violations if d.level in ("mandatory", "remediate")]

    @property
    def render_errors(self) -> list[RenderStatus]:
        """Applications whose chart or overlay failed to render."""
        return [r for r in self.renders if r.status == "error"]

    @property
    def build_errors(self) -> list[ImageRow]:
        """Apps whose image failed to build under --build."""
        return [i for i in self.images if i.status == "error"]

    @property
    def exit_code(self) -> int:
        """Non-zero on any mandatory violation, render error or build error."""
        return EXIT_FAILED if self.mandatory or self.render_errors or self.build_errors else EXIT_OK

    def summary(self) -> str:
        """One line: counts and the verdict."""
        advisory = len(self.violations) - len(self.mandatory)
        unknown = len(self.diagnostics) - len(self.violations)
        rendered = sum(len(r.objects) for r in self.renders)
        verdict = "FAIL" if self.exit_code else "PASS"
        return (
            f"{verdict}: stack {self.stack}: {self.resources} resources, {rendered} rendered objects; "
            f"{len(self.mandatory)} mandatory, {advisory} advisory violation(s), {unknown} can't judge yet, "
            f"{len(self.render_errors)} render error(s)"
            + (f", {len(self.build_errors)} build error(s)" if self.building else "")
        )

    def format(self, width: int = 110) -> str:
        """The full table."""
        lines = [f"Policy check, stack {self.stack}", ""]
        violations = sorted(self.violations, key=lambda d: (d.level != "mandatory", d.policy, d.urn))
        if violations:
            lines.append(f"{'LEVEL':<10} {'POLICY':<26} RESOURCE")
            for d in violations:
                lines.append(f"{d.level:<10} {d.policy:<26} {_short(d.urn)}")
                lines += textwrap.wrap(
                    d.detail, width=width, initial_indent=" " * 11, subsequent_indent=" " * 11
                )
        else:
            lines.append("No policy violations.")
        unknown = [d for d in self.diagnostics if d.cant_judge]
        if unknown:
            lines += ["", "Can't judge yet (unknown until `pulumi up` runs; not a pass, not a fail):"]
            for d in unknown:
                reason = d.message.split(" during preview: ", 1)[-1]
                lines.append(f"  {d.policy:<26} {_short(d.urn) or '(stack)'}: {reason}")
        lines += ["", *self._image_lines()]
        lines += ["", *self._render_lines()]
        lines += ["", self.summary()]
        return "\n".join(lines)

    def _image_lines(self) -> list[str]:
        if not self.images:
            return ["No images to build (every app is pinned or promoted, or there are none)."]
        if not self.building:
            return [
                f"Image sizes: not measured ({len(self.images)} image(s)); image-size-limit can't judge them "
                "yet. Run with --build to build each image with the local Docker Engine and measure it."
            ]
        lines = ["Image sizes (--build: built with the local Docker Engine, measured as a push uploads):"]
        for i in self.images:
            head = f"  {i.app} ({i.image}, {i.dockerfile}): "
            text = {"error": "BUILD ERROR: ", "not-measured": "not measured: "}.get(i.status, "") + i.detail
            lines.append(head + text)  # one line per app, unwrapped, so a log search finds it whole
        return lines

    def _render_lines(self) -> list[str]:
        if not self.rendering:
            return ["Rendering skipped (--no-render): charts and overlays were not judged."]
        if not self.renders:
            return ["No Argo CD Applications to render."]
        verdicts: dict[str, list[str]] = defaultdict(list)
        for d in self.violations:
            verdicts[d.urn].append(f"{d.level} {d.policy}")
        lines = ["Rendered objects per Application:"]
        for r in self.renders:
            where = f"{r.engine} {r.path}"
            if r.status == "rendered":
                lines.append(f"  {r.application} ({where}): {len(r.objects)} object(s)")
                for o in r.objects:
                    verdict = ", ".join(sorted(verdicts.get(o.urn, []))) or "ok"
                    if o.scaled_by:
                        verdict += f" (replicas owned by {o.scaled_by}, judged there)"
                    lines.append(f"    {o.type:<52} {o.name:<24} {verdict}")
            elif r.status == "not-rendered":
                lines.append(f"  {r.application}: not rendered: {r.reason}")
            else:
                lines.append(f"  {r.application} ({where}): RENDER ERROR: {r.reason}")
        return lines


def _short(urn: str) -> str:
    """`type name` from a URN, which is what a reader needs to find the resource."""
    if "::" not in urn:
        return urn
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]} {parts[-1]}" if len(parts) >= 4 else urn
