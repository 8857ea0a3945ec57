"""Labels and annotations the program puts on the objects it manages."""

from __future__ import annotations

MANAGED_BY = {"app.kubernetes.io/managed-by": "gitops-deploy"}
"""Marks an object as declared by this program; policies use it to find their targets."""
PULL_SECRET_ROLE = {"gitops-deploy/role": "image-pull-secret"}
"""Marks the image pull Secret of an app."""
IMAGE_SIZE_ANNOTATION = "gitops-deploy/image-size-bytes"
"""Compressed size of the app's image, as the registry reports it."""
ARGOCD_FINALIZER = "resources-finalizer.argocd.argoproj.io"
"""Makes Argo CD delete an Application's resources before the Application itself."""


def app_labels(app: str) -> dict[str, str]:
    """Labels every object of one app carries."""
    return {**MANAGED_BY, "app.kubernetes.io/name": app}
