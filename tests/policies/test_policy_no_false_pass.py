"""No false pass of a mandatory policy, no crash, with property tests.

The property tests run the pack's rules in-process on props shaped as the engine sends them (through
protobuf: numbers become floats, wrapped in the SDK's read-only proxies); a few cases also go through
the real pack over gRPC, where a crash used to be an RPC error.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions, _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from model.names import (
    APPLICATION_TYPE,
    DEPLOYMENT_TYPE,
    HEALTH_CHECK_TYPE,
    IMAGE_SIZE_ANNOTATION,
    IMAGE_SIZE_TYPE,
    SECRET_TYPE,
    STATEFULSET_TYPE,
)
from policy_check.analyzer_client import Diagnostic, PolicyInput, PolicyPackServer, to_struct
from rules import POLICIES
from rules.images import MAX_BYTES, application_findings
from rules.props import MAX_DIGITS, as_whole_number, is_hpa, rendered_from_application
from rules.replicas import MAX_REPLICAS, rendered_findings, replicas_findings
from tests.support.policy_resources import app_urn, application, application_props, hpa, workload

HPA_VERSIONS = ("autoscaling/v1", "autoscaling/v2")
"""The HorizontalPodAutoscaler versions Kubernetes serves (v2beta1 went in 1.25, v2beta2 in 1.26)."""
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Modest: CI has two cores and the suite must stay fast."""

# -- the engine's wire form -----------------------------------------------------------------------


def wire(props: Mapping[str, Any]) -> Any:
    """Props as a policy sees them: through protobuf (ints become floats) into the SDK's proxies."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(to_struct(props))))


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def run_resource_policy(
    policy: ResourceValidationPolicy,
    type_: str,
    props: Mapping[str, Any],
    urn: str,
    config: Mapping[str, Any],
) -> list[str]:
    """Every message one resource policy reports, as the SDK's Analyze would call it."""
    messages: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        messages.append(message)

    args = ResourceValidationArgs(type_, wire(props), urn, urn.rsplit("::", 1)[-1], _opts(), None, config)
    validations = policy.validate if isinstance(policy.validate, list) else [policy.validate]
    for validate in validations:
        with contextlib.suppress(_NotApplicableError):  # the SDK records it; not a crash
            validate(args, report)
    return messages


def run_stack_policy(
    policy: StackValidationPolicy,
    resources: Sequence[tuple[str, str, Mapping[str, Any]]],
    config: Mapping[str, Any],
) -> list[str]:
    """Every message one stack policy reports over (type, urn, props) resources."""
    policy_resources = [
        PolicyResource(t, wire(p), u, u.rsplit("::", 1)[-1], _opts(), None, None, [], {})
        for t, u, p in resources
    ]
    messages: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        messages.append(message)

    with contextlib.suppress(_NotApplicableError):
        policy.validate(StackValidationArgs(policy_resources, config), report)
    return messages


def _defaults(policy: Any) -> dict[str, Any]:
    schema = policy.config_schema.properties if policy.config_schema else {}
    return {k: v["default"] for k, v in schema.items() if "default" in v}


# -- values a person, a chart or a tool may write for a number -------------------------------------

LIMIT = MAX_BYTES.default
DIGIT_LOOKALIKES = "0123456789\u00b2\u00b3\u00b9\u0660\u0661\u06f1\u0967\uff10\uff11\uff19\u2460"


def _spellings(n: int) -> list[str]:
    """Ways to write `n` that some reader (Python, Go, YAML 1.1, a person) takes for a number."""
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in str(n))
    return [
        str(n),
        f"0{n}",
        f"+{n}",
        f" {n} ",
        f"{n}\n",
        f"{n:_}",
        f"{n}.0",
        f"{float(n):e}",
        hex(n),
        oct(n),
        full_width,
        str(-n),
    ]


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    # NaN and infinity cannot reach a policy: the SDK reads props through JSON (MessageToDict).
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-5, max_value=12),
    st.integers(min_value=LIMIT - 5, max_value=LIMIT + 5),
)
number_like = st.one_of(
    numbers,
    numbers.map(str),
    st.integers(min_value=-5, max_value=12).flatmap(lambda n: st.sampled_from(_spellings(n))),
    st.integers(min_value=LIMIT - 3, max_value=LIMIT + 3).flatmap(lambda n: st.sampled_from(_spellings(n))),
    st.text(alphabet=DIGIT_LOOKALIKES + " +-_.eExXoOb\n", max_size=12),
    st.integers(min_value=1, max_value=40).map(lambda k: "9" * k),
    st.just("5" * 5000),
    st.booleans(),
    st.none(),
)


def readings(value: Any) -> list[float]:
    """Every number a lenient reader could take `value` for (Python int/float, base prefixes, YAML 1.1,
    Go's strconv as Helm's --set and Argo CD's kustomize counts use it); a policy that passes must be
    right under all of them."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [] if isinstance(value, float) and math.isnan(value) else [float(value)]
    if not isinstance(value, str) or len(value) > 100:
        return []
    found: list[float] = []
    parsers: list[Callable[[str], Any]] = [int, float, lambda s: int(s, 0)]
    for parse in parsers:
        with contextlib.suppress(ValueError, OverflowError):
            found.append(float(parse(value)))
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, int | float) and not isinstance(loaded, bool):
        found.append(float(loaded))
    if re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        found.append(float(int(value.strip())))
    return [r for r in found if not math.isnan(r)]


# -- 11. one strict number reader --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2",
        "\uff11\uff10",
        "\u0661",
        "1e9",
        "0x3B9ACA00",
        "+3",
        "-3",
        " 3",
        "3 ",
        "03",
        "3.0",
        "1_000",
        "",
    ],
)
def test_anything_but_canonical_ascii_digits_is_malformed(text: str) -> None:
    assert as_whole_number(text) is None


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 2.5, True, None, [3], {"n": 3}])
def test_a_value_that_is_not_a_whole_number_is_malformed(value: Any) -> None:
    assert as_whole_number(value) is None


def test_digit_strings_are_bounded() -> None:
    assert as_whole_number("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    assert as_whole_number("9" * (MAX_DIGITS + 1)) is None
    assert as_whole_number("5" * 5000) is None  # int() would raise past Python's 4300-digit limit


@given(number_like)
@PROPERTY_SETTINGS
def test_the_strict_reader_agrees_with_every_lenient_reader_it_accepts(value: Any) -> None:
    strict = as_whole_number(value)
    if strict is not None:
        assert all(r == float(strict) for r in readings(value)), (value, readings(value))


# -- property tests: the pack never crashes ----------------------------------------------------------

leaf = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8), number_like)
any_json = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The plausible shape, or anything at all."""
    return st.one_of(strategy, any_json)


source = st.fixed_dictionaries(
    {},
    optional={
        "helm": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "valuesObject": maybe(st.fixed_dictionaries({}, optional={"replicaCount": number_like})),
                    "parameters": maybe(
                        st.lists(
                            maybe(
                                st.fixed_dictionaries({"name": st.just("replicaCount"), "value": number_like})
                            )
                        )
                    ),
                },
            )
        ),
        "kustomize": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "replicas": maybe(
                        st.lists(maybe(st.fixed_dictionaries({"name": any_json, "count": number_like})))
                    )
                },
            )
        ),
        "path": any_json,
        "repoURL": any_json,
    },
)
props_strategy = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": maybe(st.text(max_size=8)),
                        "namespace": maybe(st.text(max_size=8)),
                        "labels": maybe(st.just({"app.kubernetes.io/managed-by": "gitops-deploy"})),
                        "annotations": maybe(st.fixed_dictionaries({IMAGE_SIZE_ANNOTATION: number_like})),
                    },
                )
            ),
            "spec": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "replicas": number_like,
                        "minReplicas": number_like,
                        "scaleTargetRef": maybe(st.fixed_dictionaries({"kind": any_json, "name": any_json})),
                        "source": maybe(source),
                        "sources": maybe(st.lists(maybe(source), max_size=2)),
                        "syncPolicy": any_json,
                        "template": any_json,
                    },
                )
            ),
            "size_bytes": number_like,
            "image": any_json,
            "type": any_json,
            "data": any_json,
        },
    )
)
TYPES = [
    APPLICATION_TYPE,
    DEPLOYMENT_TYPE,
    STATEFULSET_TYPE,
    IMAGE_SIZE_TYPE,
    HEALTH_CHECK_TYPE,
    SECRET_TYPE,
    "kubernetes:argoproj.io/v1alpha1:AppProject",
    "kubernetes:core/v1:Service",
    *(f"kubernetes:{v}:HorizontalPodAutoscaler" for v in (*HPA_VERSIONS, "autoscaling/v2beta2")),
]
types = st.sampled_from(TYPES)
urns = st.sampled_from([app_urn("web"), workload(parent=app_urn()).urn, workload().urn, "not-a-urn"])


@given(types, props_strategy, urns)
@PROPERTY_SETTINGS
def test_no_resource_policy_crashes_on_any_props(type_: str, props: Any, urn: str) -> None:
    if not isinstance(props, dict):
        props = {"value": props}
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            run_resource_policy(policy, type_, props, urn, _defaults(policy))


@given(st.lists(st.tuples(types, urns, props_strategy), max_size=4))
@PROPERTY_SETTINGS
def test_no_stack_policy_crashes_on_any_props(resources: list[tuple[str, str, Any]]) -> None:
    shaped = [(t, u, p if isinstance(p, dict) else {"value": p}) for t, u, p in resources]
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            run_stack_policy(policy, shaped, _defaults(policy))


# -- property tests: no false pass of image-size-limit or minimum-replicas ---------------------------


@given(number_like)
@PROPERTY_SETTINGS
def test_no_size_any_reader_takes_for_over_the_limit_passes(size: Any) -> None:
    props = application_props(size=size)
    passed = application_findings(wire(props), "web", LIMIT) == []
    if passed:
        assert as_whole_number(size) is not None, size
        assert all(0 <= r < LIMIT for r in readings(size)), (size, readings(size))


REPLICA_PLACES: dict[str, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    "helm valuesObject": lambda v: (APPLICATION_TYPE, application_props(replicas=v)),
    "kustomize count": lambda v: (APPLICATION_TYPE, application_props(engine="kustomize", replicas=v)),
    "helm parameter": lambda v: (APPLICATION_TYPE, _with_parameter(v)),
    "Deployment": lambda v: (DEPLOYMENT_TYPE, dict(workload(replicas=v).props)),
    "StatefulSet": lambda v: (STATEFULSET_TYPE, dict(workload("StatefulSet", replicas=v).props)),
    "HPA v1": lambda v: (hpa(v, version="v1").type, dict(hpa(v, version="v1").props)),
    "HPA v2": lambda v: (hpa(v).type, dict(hpa(v).props)),
}


def _with_parameter(value: Any) -> dict[str, Any]:
    props = application_props(replicas=5)
    props["spec"]["source"]["helm"]["parameters"] = [{"name": "replicaCount", "value": value}]
    return props


@given(st.sampled_from(sorted(REPLICA_PLACES)), number_like, st.integers(min_value=1, max_value=5))
@PROPERTY_SETTINGS
def test_no_count_any_reader_takes_for_under_the_minimum_passes(place: str, count: Any, minimum: int) -> None:
    type_, props = REPLICA_PLACES[place](count)
    passed = replicas_findings(type_, wire(props), "x", minimum) == []
    if passed and count is not None:  # None: the field is left out, judged as Kubernetes' default of 1
        assert as_whole_number(count) is not None, count
        assert all(minimum <= r <= MAX_REPLICAS for r in readings(count)), (place, count, readings(count))
    if count is None and place in ("Deployment", "StatefulSet", "HPA v1", "HPA v2"):
        assert passed == (minimum <= 1)


# -- 10. every HorizontalPodAutoscaler version Kubernetes serves -------------------------------------


def _served_hpa_versions() -> dict[str, set[str]]:
    """Kubernetes version -> the autoscaling versions whose HPA kubernetes-validate has a schema for."""
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    served: dict[str, set[str]] = {}
    for folder in root.iterdir():
        names = os.listdir(folder)
        found = {
            m.group(1)
            for n in names
            if (m := re.fullmatch(r"horizontalpodautoscaler-autoscaling-(\w+)\.json", n))
        }
        served[folder.name] = {f"autoscaling/{v}" for v in found}
    return served


def test_every_served_hpa_version_is_judged() -> None:
    served = _served_hpa_versions()
    assert served, "kubernetes-validate ships no schemas"
    for folder, versions in served.items():
        for version in versions:
            assert is_hpa(f"kubernetes:{version}:HorizontalPodAutoscaler"), (folder, version)
    latest = max(served, key=lambda name: tuple(int(x) for x in re.findall(r"\d+", name)[:3]))
    assert served[latest] == set(HPA_VERSIONS), (latest, served[latest])
    assert not is_hpa("kubernetes:apps/v1:Deployment") and not is_hpa("kubernetes:autoscaling/v1:Scale")


def test_rendered_objects_are_recognised_by_their_urn() -> None:
    assert rendered_from_application(workload(parent=app_urn()).urn)
    assert not rendered_from_application(workload().urn)
    assert not rendered_from_application(app_urn()) and not rendered_from_application("junk")


# -- the same, over gRPC, through the real pack ------------------------------------------------------


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackServer]:
    with PolicyPackServer(config={}, stack="prod") as server:
        yield server


def _of(diags: list[Diagnostic], policy: str) -> list[Diagnostic]:
    return [d for d in diags if d.policy == policy and not d.cant_judge]


@pytest.mark.grpc
@pytest.mark.parametrize("version", ["v1", "v2", "v2beta2"])
@pytest.mark.parametrize(("minimum", "fails"), [(1, True), (3, False)])
def test_an_hpa_of_every_version_is_judged(
    pack: PolicyPackServer, version: str, minimum: int, fails: bool
) -> None:
    resource = hpa(minimum, version=version)
    found = _of(pack.analyze(resource), "minimum-replicas")
    assert bool(found) == fails, found
    if fails:
        assert f"spec.minReplicas is {minimum}, under minReplicas 3" in found[0].detail


@pytest.mark.grpc
@pytest.mark.parametrize("value", ["\u00b2", "5" * 5000, "\uff11\uff10", "1e9", " 3", 2.5, -1, 2**40])
def test_malformed_counts_and_sizes_are_violations_not_rpc_errors(pack: PolicyPackServer, value: Any) -> None:
    for resource, policy in [
        (application(size=value), "image-size-limit"),
        (application(replicas=value), "minimum-replicas"),
        (workload(replicas=value), "minimum-replicas"),
        (hpa(value, version="v1"), "minimum-replicas"),
    ]:
        found = _of(pack.analyze(resource), policy)
        assert len(found) == 1 and found[0].level == "mandatory", (policy, value, found)
        assert len(found[0].detail) < 800, found[0].detail  # a 5,000-digit value is not quoted whole


def _rendered(*resources: PolicyInput) -> list[PolicyInput]:
    return [application(), *resources]


@pytest.mark.grpc
@pytest.mark.parametrize(
    ("version", "hpa_min", "fails"), [("v1", 1, True), ("v1", 3, False), ("v2", 2, True)]
)
def test_a_rendered_workload_an_hpa_owns_is_judged_through_the_hpa(
    pack: PolicyPackServer, version: str, hpa_min: int, fails: bool
) -> None:
    app = app_urn()
    deployment = workload(replicas=None, parent=app)
    scaler = hpa(hpa_min, version=version, parent=app)
    resources = _rendered(deployment, scaler)
    on_deployment = _of(pack.analyze(deployment), "minimum-replicas")
    on_hpa = _of(pack.analyze(scaler), "minimum-replicas")
    stack = _of(pack.analyze_stack(resources), "minimum-replicas-rendered")
    assert on_deployment == [] and stack == [], (on_deployment, stack)
    assert bool(on_hpa) == fails, on_hpa


@pytest.mark.grpc
def test_a_rendered_workload_without_replicas_or_hpa_runs_one(pack: PolicyPackServer) -> None:
    deployment = workload(replicas=None, parent=app_urn())
    assert _of(pack.analyze(deployment), "minimum-replicas") == []
    (found,) = _of(pack.analyze_stack(_rendered(deployment)), "minimum-replicas-rendered")
    assert found.urn == deployment.urn and found.level == "mandatory"
    assert (
        "no HorizontalPodAutoscaler targets it, so Kubernetes runs 1) is 1, under minReplicas 3"
        in found.detail
    )


def test_an_hpa_in_another_namespace_or_for_another_workload_owns_nothing() -> None:
    app = app_urn()
    deployment = workload(replicas=None, parent=app)
    other = hpa(5, name="api", parent=app)
    elsewhere = hpa(5, parent=app)
    elsewhere.props["metadata"]["namespace"] = "other-ns"
    resources = [(r.type, r.urn, dict(r.props)) for r in (deployment, other, elsewhere)]
    found = rendered_findings([_policy_resource(*r) for r in resources], 3)
    assert [urn for urn, _ in found] == [deployment.urn]


def _policy_resource(type_: str, urn: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(type_, wire(props), urn, urn.rsplit("::", 1)[-1], _opts(), None, None, [], {})


@pytest.mark.grpc
def test_a_workload_the_program_declares_without_replicas_still_runs_one(pack: PolicyPackServer) -> None:
    (found,) = _of(pack.analyze(workload(replicas=None)), "minimum-replicas")
    assert "missing, Kubernetes runs 1" in found.detail


@pytest.mark.grpc
def test_the_rendered_policy_follows_its_own_threshold() -> None:
    deployment = workload(replicas=None, parent=app_urn())
    with PolicyPackServer(config={"minimum-replicas-rendered": {"minReplicas": 1}}) as server:
        assert _of(server.analyze_stack(_rendered(deployment)), "minimum-replicas-rendered") == []


@pytest.mark.grpc
def test_unknown_values_are_not_judged_in_the_rendered_policy(pack: PolicyPackServer) -> None:
    deployment = workload(replicas=None, parent=app_urn())
    deployment.props["metadata"]["name"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    diags = [d for d in pack.analyze_stack(_rendered(deployment)) if d.policy == "minimum-replicas-rendered"]
    assert all(d.cant_judge for d in diags), diags
    with pytest.raises(UnknownValueError):
        rendered_findings([_policy_resource(deployment.type, deployment.urn, dict(deployment.props))], 3)
