"""Every URN of the dev stack under mocks: a component's type token, a child's name and its parent make a
URN, and a changed URN replaces a real resource."""

from __future__ import annotations

from collections.abc import Callable

from policy_check.simulate import Simulation

DEV_URNS = [
    "gitops-deploy:index:AppImage$docker:index/image:Image::api-image-image",
    "gitops-deploy:index:AppImage$docker:index/image:Image::web-image-image",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:AppImage::api-image",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:AppImage::web-image",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication::api-argocd",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:ArgoApplication::web-argocd",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:RegistrySecret::api-registry",
    "gitops-deploy:index:AppRelease$gitops-deploy:index:RegistrySecret::web-registry",
    "gitops-deploy:index:AppRelease$pulumi-python:dynamic/health:HealthCheck::api-health",
    "gitops-deploy:index:AppRelease$pulumi-python:dynamic/health:HealthCheck::web-health",
    "gitops-deploy:index:AppRelease$pulumi-python:dynamic/image:ImageSize::api-image-size",
    "gitops-deploy:index:AppRelease$pulumi-python:dynamic/image:ImageSize::web-image-size",
    "gitops-deploy:index:ArgoApplication$kubernetes:argoproj.io/v1alpha1:Application::api-argocd-application",
    "gitops-deploy:index:ArgoApplication$kubernetes:argoproj.io/v1alpha1:Application::web-argocd-application",
    "gitops-deploy:index:RegistrySecret$kubernetes:core/v1:Secret::api-registry-pull-secret",
    "gitops-deploy:index:RegistrySecret$kubernetes:core/v1:Secret::web-registry-pull-secret",
    "pulumi:pulumi:Stack$gitops-deploy:index:AppRelease::api",
    "pulumi:pulumi:Stack$gitops-deploy:index:AppRelease::web",
    "pulumi:pulumi:Stack$kubernetes:core/v1:NamespacePatch::namespace-web-dev",
    "pulumi:pulumi:Stack$pulumi-python:dynamic/registry:RegistryPreflight::registry-preflight",
]
"""`urn:pulumi:dev::gitops-deploy::` + each of these, sorted."""


def test_the_dev_stack_registers_exactly_these_urns(run_program: Callable[..., Simulation]) -> None:
    prefix = "urn:pulumi:dev::gitops-deploy::"
    found = sorted(r.urn.removeprefix(prefix) for r in run_program("dev").resources)
    assert found == DEV_URNS
