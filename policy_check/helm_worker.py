"""Render Helm charts with helm-python-sdk (Helm v4's Go SDK) in a process of their own
(docs/engine-rules.md#argo-cds-render): one JSON request a line on stdin, one JSON answer a line on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

_PLACEHOLDER = "gitops-deploy-force-string-7f3a9c"
"""Stands in for a `forceString` value so `parse_set_string` keeps the path but never retypes the value."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _replace_placeholder(value: Any, text: str) -> Any:
    """Put a `--set-string` value where its placeholder landed."""
    if value == _PLACEHOLDER:
        return text
    if isinstance(value, dict):
        return {k: _replace_placeholder(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_placeholder(v, text) for v in value]
    return value


def user_values(helm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Argo CD's order: value files, then `values`/`valuesObject`, then parameters (`--set`)."""
    values: dict[str, Any] = {}
    for path in request.get("value_files", []):
        with open(path, encoding="utf-8") as handle:
            values = deep_merge(values, helm.values_from_yaml(handle.read()) or {})
    if request.get("values_yaml"):
        values = deep_merge(values, helm.values_from_yaml(request["values_yaml"]) or {})
    if request.get("values_object"):
        values = deep_merge(values, request["values_object"])
    for param in request.get("parameters", []):
        name, value = str(param["name"]), str(param.get("value", ""))
        if param.get("forceString"):
            parsed = _replace_placeholder(helm.parse_set_string(f"{name}={_PLACEHOLDER}"), value)
        else:
            parsed = helm.parse_set_string(f"{name}={value}")
        values = deep_merge(values, parsed)
    return values


def missing_dependencies(helm: Any, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The `file://` dependencies to build into `charts/`, or why the chart cannot be judged offline."""
    if not request.get("has_dependencies"):
        return [], None
    to_build = []
    for dep in helm.dependency_list(request["chart_dir"]):
        if dep.get("status") != "missing":
            continue
        repository = str(dep.get("repository") or "")
        if repository.startswith("file://"):
            to_build.append(dep)
        elif not repository:
            raise ValueError(f"dependency {dep.get('name')!r} has no repository and is not in charts/")
        else:
            return [], (
                f"can't judge yet: dependency {dep.get('name')!r} ({repository}) is not vendored in charts/ "
                "and the offline check fetches nothing"
            )
    return to_build, None


def _rendered(helm: Any, chart_dir: str, values: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(
            values, name=request["release"], namespace=request["namespace"], is_install=True
        )
        crds = chart.crds
        size = sum(len(text) for text in manifests.values()) + sum(len(c.get("data", "")) for c in crds)
        if size > int(request.get("max_bytes") or size):
            return {"too_big": size}  # not sent back: the caller bounds what it reads
        return {"chart": chart.name, "manifests": manifests, "crds": crds}


def render(request: dict[str, Any]) -> dict[str, Any]:
    """Load the chart, build its `file://` dependencies, merge the values, validate and render."""
    import helm_python as helm

    try:
        values = user_values(helm, request)
        to_build, cant_judge = missing_dependencies(helm, request)
        if cant_judge:
            return {"cant_judge": cant_judge}
        if not to_build:
            return _rendered(helm, request["chart_dir"], values, request)
        return _rendered_with_dependencies(helm, values, request, to_build)
    except (helm.HelmError, OSError, ValueError, KeyError) as exc:
        return {"error": str(exc).strip(), "error_type": type(exc).__name__}


def _rendered_with_dependencies(
    helm: Any, values: dict[str, Any], request: dict[str, Any], to_build: list[dict[str, Any]]
) -> dict[str, Any]:
    """Render a copy of the chart with its `file://` dependencies packaged into its `charts/`."""
    # Imported here: every process pays its imports before its first render, and few charts need these.
    import shutil
    import tempfile
    from pathlib import Path

    local = request.get("local_dependencies") or {}
    with tempfile.TemporaryDirectory(prefix="gitops-render-chart-") as tmp:
        # The repository's chart is never written to: the build goes into a copy.
        copy = Path(tmp) / Path(request["chart_dir"]).name
        try:
            shutil.copytree(request["chart_dir"], copy)
            (copy / "charts").mkdir(exist_ok=True)
            for dep in to_build:
                helm.package(local[dep["name"]], destination=copy / "charts")
            return _rendered(helm, str(copy), values, request)
        except (helm.HelmError, OSError, ValueError, KeyError) as exc:
            # Name the repository's chart, not the throwaway copy.
            message = str(exc).strip().replace(str(copy), request["chart_dir"])
            return {"error": message, "error_type": type(exc).__name__}


EPILOG = """\
It is internal to the CLI-free check: policy_check/render_helm.py starts it and writes each request (the
chart folder, release name, namespace and values) as a line to its stdin; stdout gets a line for each,
the rendered manifests or the chart's error. It exits at the end of its input.

exit codes:
  0  answered every request (a chart that does not render is an answer: {"error": ...})
  1  a request on stdin is not JSON
  2  a bad option
"""


def _parser() -> Any:
    import argparse  # only for --help

    return argparse.ArgumentParser(
        prog="python -I policy_check/helm_worker.py",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    """Answer each request, in order."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:  # --help; the check starts it with none, so it never pays for argparse
        _parser().parse_args(argv)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            print(f"error: the request on stdin is not JSON ({exc})", file=sys.stderr)
            return 1
        sys.stdout.write(json.dumps(render(request)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
