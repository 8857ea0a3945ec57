"""pulumi-kubernetes' `pulumi.com/waitFor` rules, written once, each citing where it comes from.

Source: pulumi/pulumi-kubernetes v4.32.0 (the mirror; the installed SDK is 4.34.2, whose provider
binary the engine runs), read with `git show HEAD:<path>`:
- provider/pkg/metadata/overrides.go `ReadyCondition`: the annotation is a JSON array of strings,
  or else one expression; an empty array is an error; each needs a `jsonpath=` or `condition=` prefix.
- provider/pkg/jsonpath/jsonpath.go `Parse`: the parsing rules in `parse`; `Matches`: the match rules
  in `Expression.matches`. The path is RFC 9535 JSONPath (github.com/theory/jsonpath v0.9.0); here it
  is evaluated by PyPI `jsonpath-rfc9535`.
- provider/pkg/await/condition/jsonpath.go `Satisfied`: an observedGeneration older than the
  generation holds the condition; the progress message `Waiting for <expr> (found "<value>")`.
- provider/pkg/await/condition/all.go `Satisfied`: every condition, in order, on the same object; the
  first that does not hold (or errs) ends the evaluation.
- provider/pkg/await/internal/awaiter.go `Await`: an error does not end the wait early; it is what the
  wait reports when it ends unsatisfied (at the timeout).
- provider/pkg/metadata/overrides.go `TimeoutDuration` and await.go `Creation`, `Update`, `Deletion`:
  each wait's bound is the step's own custom timeout when set, else the `pulumi.com/timeoutSeconds`
  annotation when it is a whole number (`strconv.Atoi`), else 10 minutes; a delete reads the annotation
  from the old inputs. The engine sends create's, update's or delete's custom timeout, in seconds, as
  parsed from the program's Go duration (pulumi/pulumi v3.259 pkg/resource/deploy/step.go,
  source_eval.go `generateTimeoutInSeconds`; an empty one is 0, "not set"); a delete's is the one kept
  in the state (`DeleteStep.Apply`: `s.old.CustomTimeouts.Delete`). Same in v4.18.0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpath_rfc9535

from model.names import TIMEOUT_ANNOTATION

_PLACEHOLDER = "\ufffd"
"""jsonpath.go protects `==` with this rune before splitting on `=`."""
_BRACKETS = re.compile(r"\{[\t\n\f\r ]*(.*?)[\t\n\f\r ]*\}")
"""jsonpath.go `_bracketExpr`; Go's `\\s` is `[\\t\\n\\f\\r ]`, and `.` stops at newlines."""


class ParseError(ValueError):
    """pulumi-kubernetes refuses the expression (the update fails before any wait)."""


class MatchError(ValueError):
    """`Matches` returns an error: a value compared against a list or an object."""


@dataclass(frozen=True)
class Expression:
    """One parsed `jsonpath=` condition."""

    raw: str
    """As written in the annotation."""
    path: str
    """The braced path, as pulumi-kubernetes displays it."""
    value: str
    """The expected value; '' when the expression has none."""
    query: jsonpath_rfc9535.JSONPathQuery

    def __str__(self) -> str:
        # jsonpath.go `Parsed.String`.
        return f"{self.path}={self.value}" if self.value else self.path

    def matches(self, obj: dict[str, Any]) -> Match:
        """jsonpath.go `Matches`: compare only the first selected node, printed as Go prints it."""
        nodes = self.query.find(obj)
        if not nodes:
            return Match(False, "", f"{self.path} selected nothing")
        first = nodes[0].value
        if isinstance(first, list | dict):
            if not self.value:
                return Match(True, "", "")
            raise MatchError(f"{self.path!r} has a non-primitive value ({first!r})")
        found = go_sprint(first)
        if not self.value:
            return Match(True, found, "")
        return Match(self.value == found, found, "")


@dataclass(frozen=True)
class Match:
    """jsonpath.go `MatchResult`."""

    matched: bool
    found: str
    message: str


def parse(raw: str) -> Expression:
    """jsonpath.go `Parse`, rule by rule."""
    if raw == "":
        raise ParseError("expected a non-empty JSONPath expression")
    if not raw.startswith("jsonpath="):
        raise ParseError("JSONPath expression must begin with a 'jsonpath=' prefix")
    rest = raw.removeprefix("jsonpath=")
    # Split only on "=" and preserve "==": every other "=", inside braces or quotes too, splits.
    parts = rest.replace("==", _PLACEHOLDER).split("=")
    if len(parts) > 2:
        raise ParseError(f"format should be {{.path}}=value or {{.path}}, got {rest!r}")
    path = parts[0].replace(_PLACEHOLDER, "==")
    value = ""
    if len(parts) == 2:
        value = parts[1].replace(_PLACEHOLDER, "==")
        if value == "":
            raise ParseError(f"{path}= requires a value")
    if path.startswith("'") and path.endswith("'"):
        raise ParseError(f"{path} should omit shell quotes")
    found = _BRACKETS.search(path)
    if found is None:
        raise ParseError(f"{path} should be wrapped in brackets {{ ... }}")
    inner = found.group(1)
    if not inner.startswith("$"):
        inner = "$" + inner
    try:
        query = jsonpath_rfc9535.compile(inner)
    except jsonpath_rfc9535.JSONPathError as exc:
        raise ParseError(f"parsing {path!r}: {exc}") from exc
    return Expression(raw=raw, path=path, value=value, query=query)


def conditions(annotation: str) -> list[Expression]:
    """overrides.go `ReadyCondition`: the `pulumi.com/waitFor` value as pulumi-kubernetes reads it."""
    try:
        values = json.loads(annotation)
    except ValueError:
        values = [annotation]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        values = [annotation]  # Go's Unmarshal into []string fails, so it is one expression
    if not values:
        raise ParseError("at least one condition must be specified")
    parsed = []
    for expr in values:
        if expr.startswith("condition="):
            raise ParseError(f"{expr!r}: condition= expressions are not modelled here")
        if not expr.startswith("jsonpath="):
            raise ParseError(f'expected a "jsonpath=" or "condition=" prefix, got {expr!r}')
        parsed.append(parse(expr))
    return parsed


@dataclass(frozen=True)
class Verdict:
    """The wait's state on one observed object."""

    satisfied: bool
    """All conditions hold: the wait ends here."""
    message: str
    """The progress line pulumi-kubernetes logs for the first condition evaluated last."""
    error: str = ""
    """What the wait would report at its timeout if this object were the last one seen."""


def _generation_current(obj: Mapping[str, Any]) -> bool:
    """condition/jsonpath.go: `status.observedGeneration < metadata.generation` holds every condition."""
    generation = _nested_int64(obj, "metadata", "generation")
    observed = _nested_int64(obj, "status", "observedGeneration")
    return generation is None or observed is None or observed >= generation


def _nested_int64(obj: Mapping[str, Any], *keys: str) -> int | None:
    """unstructured.NestedInt64: found only when the value is an integer."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def evaluate(exprs: Sequence[Expression], obj: dict[str, Any]) -> Verdict:
    """all.go `Satisfied` over condition/jsonpath.go `Satisfied`, on one observed object."""
    for expr in exprs:
        if not _generation_current(obj):
            return Verdict(False, f"Waiting for {expr}")
        try:
            result = expr.matches(obj)
        except MatchError as exc:
            return Verdict(False, f"Waiting for {expr}", str(exc))
        if not result.matched:
            message = f"Waiting for {expr}"
            if result.found:
                message += f' (found "{result.found}")'
            return Verdict(False, result.message or message)
    return Verdict(True, f"Found {exprs[-1]}" if exprs else "")


def go_sprint(value: Any) -> str:
    """Go's `fmt.Sprint` of a JSON scalar as Kubernetes' unstructured decoding types it.

    Integers decode as int64 (printed in decimal), other numbers as float64 (`%v`, which is `%g` with
    the shortest precision: an exponent from 1e6 or below 1e-4, Go's fmt/print.go and
    strconv/ftoa.go), booleans as `true`/`false`, null as `<nil>`.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, int | float):
        return _go_float(float(value))
    return str(value)


def _go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64), which fmt's `%v` uses for a float64."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest(abs(f))
    sign = "-" if f < 0 else ""
    # strconv/ftoa.go: "%e is used if the exponent ... is less than -4 or greater than or equal to the
    # precision"; with the shortest digits that precision is 6.
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if exp + 1 >= len(digits):
        return sign + digits + "0" * (exp + 1 - len(digits))
    return f"{sign}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def _shortest(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a positive float and its decimal exponent (d.ddd * 10**exp)."""
    mantissa, _, exponent = f"{f!r}".partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exp = int(exponent or 0) + len(whole) - 1 - (len(whole + frac) - len((whole + frac).lstrip("0")))
    return digits.rstrip("0") or "0", exp


DEFAULT_TIMEOUT_S = 600.0
"""await.go: `timeout := 10 * time.Minute` when neither a custom timeout nor the annotation is set."""
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?)(h|m|s|ms)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def go_duration_seconds(text: str) -> float:
    """time.ParseDuration for the units a custom timeout uses (h, m, s, ms); '' is 0."""
    if text == "":
        return 0.0
    parts = _GO_DURATION.findall(text)
    if "".join(n + u for n, u in parts) != text:
        raise ValueError(f"unable to parse customTimeout Value {text}")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def wait_bound_seconds(op: str, custom_timeouts: Mapping[str, str], annotations: Mapping[str, str]) -> float:
    """How long pulumi-kubernetes waits in a create, update or delete of this object."""
    seconds = go_duration_seconds(custom_timeouts.get(op, ""))
    if seconds:
        return seconds
    annotation = annotations.get(TIMEOUT_ANNOTATION, "")
    if re.fullmatch(r"[+-]?\d+", annotation):
        return float(int(annotation))
    return DEFAULT_TIMEOUT_S
