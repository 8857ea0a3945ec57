"""Type tokens, resource-name suffixes, labels and annotations, spelled once.

Stdlib only: the policy pack imports this file too (docs/engine-rules.md#policy-pack-runtime).
Changing a token or a suffix changes URNs: add `aliases` where it is used.
"""

from __future__ import annotations

PROJECT = "gitops-deploy"  # the Pulumi project name, the config namespace and the policy pack's name

APP_RELEASE_TYPE = "gitops-deploy:index:AppRelease"
APP_IMAGE_TYPE = "gitops-deploy:index:AppImage"
ARGO_APPLICATION_TYPE = "gitops-deploy:index:ArgoApplication"
ARGO_PROJECT_TYPE = "gitops-deploy:index:ArgoProject"
REGISTRY_SECRET_TYPE = "gitops-deploy:index:RegistrySecret"

HEALTH_CHECK_MODULE, HEALTH_CHECK_NAME = "health", "HealthCheck"
IMAGE_SIZE_MODULE, IMAGE_SIZE_NAME = "image", "ImageSize"
REGISTRY_PREFLIGHT_MODULE, REGISTRY_PREFLIGHT_NAME = "registry", "RegistryPreflight"


def dynamic_type(module: str, name: str) -> str:
    """The type token the Python SDK gives a dynamic resource class."""
    return f"pulumi-python:dynamic/{module}:{name}"


HEALTH_CHECK_TYPE = dynamic_type(HEALTH_CHECK_MODULE, HEALTH_CHECK_NAME)
IMAGE_SIZE_TYPE = dynamic_type(IMAGE_SIZE_MODULE, IMAGE_SIZE_NAME)
REGISTRY_PREFLIGHT_TYPE = dynamic_type(REGISTRY_PREFLIGHT_MODULE, REGISTRY_PREFLIGHT_NAME)
LOCAL_SIZE_SOURCE = "local"
"""ImageSize `size_source` prefix of a measurement of the local build (a preview's, before the push)."""

STACK_TYPE = "pulumi:pulumi:Stack"
DOCKER_IMAGE_TYPE = "docker:index/image:Image"
APPLICATION_TYPE = "kubernetes:argoproj.io/v1alpha1:Application"
APP_PROJECT_TYPE = "kubernetes:argoproj.io/v1alpha1:AppProject"
SECRET_TYPE = "kubernetes:core/v1:Secret"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
STATEFULSET_TYPE = "kubernetes:apps/v1:StatefulSet"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
"""What app namespaces were declared as before they became NamespacePatch (an alias keeps the URN)."""
NAMESPACE_PATCH_TYPE = "kubernetes:core/v1:NamespacePatch"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"  # the Secret `type` of an image pull secret

# Resource-name suffixes: every child of an app's AppRelease is `<app><suffix>...`.
REGISTRY_SUFFIX = "-registry"  # the RegistrySecret component, and the Kubernetes Secret's `metadata.name`
PULL_SECRET_SUFFIX = "-pull-secret"  # the Secret resource under the RegistrySecret component
IMAGE_SUFFIX = "-image"  # the AppImage component, and the docker Image under it
IMAGE_SIZE_SUFFIX = "-image-size"
ARGOCD_SUFFIX = "-argocd"  # the ArgoApplication component
APPLICATION_SUFFIX = "-application"  # the Application custom resource under the ArgoApplication component
HEALTH_SUFFIX = "-health"
APPPROJECT_SUFFIX = "-appproject"

# Kubernetes names derived from an app's: each must stay a name its kind accepts.
APP_NAME_PREFIX_SEPARATOR = "-"
"""A kustomize source's `namePrefix` is `<app>-`: every object of the overlay becomes `<app>-<name>`."""
EXAMPLE_OVERLAY_NAME = "app"
"""The longest object name in the example overlay (examples/app/kustomize; a test checks it)."""
DERIVED_NAME_SUFFIXES = (REGISTRY_SUFFIX, APP_NAME_PREFIX_SEPARATOR + EXAMPLE_OVERLAY_NAME)
"""What the program (`<app>-registry`, the pull Secret) and the example overlay (`<app>-app`) add to an
app's name to name Kubernetes objects."""
NAMESPACE_PREFIX = "namespace-"
"""Stack-level resources are named by prefix: `namespace-<ns>` for each app namespace."""


def namespace_resource_name(namespace: str) -> str:
    """Resource name of the stack's patch of one app namespace."""
    return f"{NAMESPACE_PREFIX}{namespace}"


def health_check_name(app: str) -> str:
    """Resource name of an app's HealthCheck."""
    return f"{app}{HEALTH_SUFFIX}"


def application_resource_name(app: str) -> str:
    """Resource name of an app's Application custom resource."""
    return f"{app}{ARGOCD_SUFFIX}{APPLICATION_SUFFIX}"


def pull_secret_name(app: str) -> str:
    """`metadata.name` of an app's image pull Secret."""
    return f"{app}{REGISTRY_SUFFIX}"


MANAGED_BY_KEY, MANAGED_BY_VALUE = "app.kubernetes.io/managed-by", PROJECT
MANAGED_BY = {MANAGED_BY_KEY: MANAGED_BY_VALUE}
"""Marks an object as declared by this program; policies use it to find their targets."""
APP_NAME_LABEL = "app.kubernetes.io/name"
PULL_SECRET_ROLE_KEY, PULL_SECRET_ROLE_VALUE = "gitops-deploy/role", "image-pull-secret"
PULL_SECRET_ROLE = {PULL_SECRET_ROLE_KEY: PULL_SECRET_ROLE_VALUE}  # marks the image pull Secret of an app
PULL_SECRET_WORKLOADS = ("Deployment", "StatefulSet")
"""The kinds an overlay's pull-secret patches hand the app's pull secret to."""
PULL_SECRETS_ANNOTATION, PULL_SECRETS_APPEND = "gitops-deploy/pull-secrets", "append"
"""On an overlay's workload that lists its own imagePullSecrets: the app's pull secret is appended to them
(docs/engine-rules.md#kustomize-source)."""
PULL_SECRETS_PATH = "/spec/template/spec/imagePullSecrets"
"""Where a Deployment's or StatefulSet's pull secrets are, as a JSON Pointer."""
IMAGE_SIZE_ANNOTATION = "gitops-deploy/image-size-bytes"
"""Compressed size of the app's image, as the registry reports it."""
ARGOCD_FINALIZER = "resources-finalizer.argocd.argoproj.io"
"""Makes Argo CD delete an Application's resources before the Application itself."""
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"  # pulumi-kubernetes' await conditions on a custom resource
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"  # pulumi-kubernetes' await timeout on a custom resource


def app_labels(app: str) -> dict[str, str]:
    """Labels every object of one app carries."""
    return {**MANAGED_BY, APP_NAME_LABEL: app}
