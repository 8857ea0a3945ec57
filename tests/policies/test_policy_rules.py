"""Each validator on plain dicts and on the SDK's read-only proxies with float numbers, as over gRPC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from rules.argocd import project_scope_findings, sync_retry_findings
from rules.hygiene import container_resources_findings, pull_secret_findings, required
from rules.images import (
    MAX_BYTES,
    application_findings,
    built_images,
    image_size_findings,
    parse_ref,
    pinning_findings,
)
from rules.props import as_whole_number, fmt_num
from rules.replicas import MIN_REPLICAS, replicas_findings
from tests.support.policy_resources import DIGEST, REPO, UNKNOWN, application_props, pull_secret, workload


def wire(props: dict[str, Any]) -> Any:
    """Props as a policy sees them over gRPC: numbers as floats, read-only proxies."""
    floats = json.loads(json.dumps(props), parse_int=float)
    return unknown_checking_proxy(deserialize_properties(floats))


@pytest.fixture(params=["dict", "wire"])
def shape(request: pytest.FixtureRequest) -> Any:
    """Run each test with plain dicts (secrets unwrapped) and with gRPC-shaped props."""
    return deserialize_properties if request.param == "dict" else wire


def test_numbers_print_as_whole_numbers() -> None:
    assert fmt_num(3.0) == "3" and fmt_num(1e9) == "1,000,000,000" and fmt_num(2.5) == "2.5"
    assert as_whole_number(3.0) == 3 and as_whole_number("12") == 12
    assert as_whole_number(2.5) is None and as_whole_number(True) is None and as_whole_number("1GB") is None


def test_config_defaults_and_floats() -> None:
    assert (
        MIN_REPLICAS.read({}) == 3
        and MIN_REPLICAS.read({"minReplicas": 1.0}) == 1
        and MIN_REPLICAS.read(None) == 3
    )
    assert (
        MAX_BYTES.read({"maxBytes": 5e8}) == 500_000_000
        and MAX_BYTES.read({"maxBytes": "x"}) == 1_000_000_000
    )
    assert required({}) == (("cpu", "memory"), ("memory",))


def test_replicas(shape: Any) -> None:
    dep = workload(replicas=2)
    assert (
        "spec.replicas is 2, under minReplicas 3" in replicas_findings(dep.type, shape(dep.props), "w", 3)[0]
    )
    assert replicas_findings(dep.type, shape(dep.props), "w", 2) == []
    app = application_props(engine="kustomize", replicas=1)
    assert (
        "kustomize.replicas[0].count (web) is 1"
        in replicas_findings("kubernetes:argoproj.io/v1alpha1:Application", shape(app), "a", 3)[0]
    )
    bad = workload(replicas="three")
    assert "'three', not a whole number" in replicas_findings(bad.type, shape(bad.props), "w", 3)[0]


def test_image_size(shape: Any) -> None:
    assert application_findings(shape(application_props(size="999999999")), "a", 10**9) == []
    assert "at or over" in application_findings(shape(application_props(size="1000000000")), "a", 10**9)[0]
    assert "1,000,000,000 bytes" in image_size_findings(shape({"size_bytes": 10**9}), "s", 10**9)[0]
    assert "missing" in image_size_findings(shape({}), "s", 10**9)[0]


def test_unknowns_raise_for_the_sdk_to_report() -> None:
    with pytest.raises(UnknownValueError):
        application_findings(wire(application_props(size=UNKNOWN)), "a", 10**9)
    with pytest.raises(UnknownValueError):
        image_size_findings(wire({"size_bytes": UNKNOWN}), "s", 10**9)


def test_image_refs(shape: Any) -> None:
    ref = parse_ref("reg:5000/a/b:1.2@sha256:x")
    assert (ref.repository, ref.tag, ref.digest) == ("reg:5000/a/b", "1.2", "sha256:x")
    assert parse_ref("reg:5000/a/b").tag is None
    assert built_images(shape(application_props())) == {(REPO, DIGEST)}
    assert built_images(shape(application_props(engine="kustomize"))) == {(REPO, DIGEST)}
    assert pinning_findings(shape(application_props()), "a") == []


def test_argocd(shape: Any) -> None:
    assert sync_retry_findings(shape(application_props()), "a", 1) == []
    assert "minLimit" not in " ".join(sync_retry_findings(shape(application_props()), "a", 5))
    assert "limit is 3; it must be at least 5" in sync_retry_findings(shape(application_props()), "a", 5)[0]
    app = "kubernetes:argoproj.io/v1alpha1:Application"
    assert project_scope_findings(app, shape(application_props(project="default")), "a")
    assert project_scope_findings(app, shape({"spec": {}}), "a")  # no project means default


def test_pull_secret_and_resources(shape: Any) -> None:
    assert pull_secret_findings(shape(pull_secret().props), "s") == []
    assert (
        "'kubernetes.io/dockercfg'"
        in pull_secret_findings(shape(pull_secret("kubernetes.io/dockercfg").props), "s")[0]
    )
    assert pull_secret_findings(shape({"type": "Opaque", "data": {"password": "x"}}), "s") == []
    dep = workload(resources={"requests": {"cpu": "1"}})
    found = container_resources_findings(dep.type, shape(dep.props), "w", ("cpu", "memory"), ("memory",))
    assert "resources.requests.memory, resources.limits.memory" in found[0]


def test_replicas_in_multi_source_applications_name_the_right_index(shape: Any) -> None:
    props = application_props(replicas=1)
    helm = props["spec"].pop("source")
    props["spec"]["sources"] = [{"repoURL": "https://example.com/values.git", "ref": "values"}, helm]
    found = replicas_findings("kubernetes:argoproj.io/v1alpha1:Application", shape(props), "a", 3)
    assert len(found) == 1 and "spec.sources[1].helm.valuesObject.replicaCount is 1" in found[0]


def test_automated_sync_without_retry(shape: Any) -> None:
    props = application_props()
    del props["spec"]["syncPolicy"]["retry"]
    (found,) = sync_retry_findings(shape(props), "a", 2)
    assert "found None" in found and "retry.limit of at least 2" in found and "Fix:" in found
