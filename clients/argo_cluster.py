"""Read and patch Argo CD Applications with the stack's own Kubernetes provider settings.

Which cluster and credentials, as pulumi-kubernetes reads them: docs/engine-rules.md#the-cluster-client.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3 import exceptions as urllib3_errors

from clients.http_bounds import DeadlineExceeded, call_within
from model.config_schema import ARGOCD_NAMESPACE, NAMESPACE
from model.errors import GitopsError

REQUEST_TIMEOUT_S = (5.0, 10.0)
"""(connect, read) timeout of each request."""
CALL_DEADLINE_S = 20.0
"""A whole call (credentials, request, answer) never takes longer than this."""
GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
KUBECONFIG_KEY = "kubernetes:kubeconfig"
CONTEXT_KEY = "kubernetes:context"
ARGOCD_KEY = f"{NAMESPACE}:argocd"

T = TypeVar("T")
_NOT_A_MAPPING = "the stack's kubeconfig is neither a file that exists nor a kubeconfig's YAML"


class ClusterError(GitopsError):
    """The cluster could not be reached or refused a request: one line, no credential in it."""


@dataclass(frozen=True)
class Target:
    """Where Argo CD's Applications are, and how to log in (never printed whole)."""

    namespace: str
    context: str | None
    kubeconfig_text: str | None = None
    """The stack's `kubernetes:kubeconfig` when it is the kubeconfig's text."""
    kubeconfig_path: str | None = None
    """A path (or $KUBECONFIG's list of paths); None with no text either: ~/.kube/config."""
    source: str = "$KUBECONFIG or ~/.kube/config"
    """Where the kubeconfig comes from, for messages (a config key or the environment, never a value)."""

    @property
    def where(self) -> str:
        """The settings in words: `the kubeconfig from kubernetes:kubeconfig (context 'x')`."""
        context = f"context {self.context!r}" if self.context else "its current context"
        return f"the kubeconfig from {self.source} ({context})"


def _argocd(values: Mapping[str, str | None]) -> Mapping[str, Any]:
    raw = values.get(ARGOCD_KEY)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        value = {}
    return value if isinstance(value, Mapping) else {}


def target_from_config(values: Mapping[str, str | None], env: Mapping[str, str]) -> Target:
    """The provider settings of the stack's Applications, from its config values and the environment."""
    argocd = _argocd(values)
    namespace = argocd.get("namespace")
    namespace = namespace if isinstance(namespace, str) and namespace else ARGOCD_NAMESPACE
    env_path = env.get("KUBECONFIG") or None
    env_source = "$KUBECONFIG" if env_path else "~/.kube/config"
    explicit = argocd.get("context")
    if isinstance(explicit, str) and explicit:
        return Target(namespace, explicit, None, env_path, env_source)
    context = values.get(CONTEXT_KEY) or None
    given = values.get(KUBECONFIG_KEY) or None
    if given is None:
        return Target(namespace, context, None, env_path, env_source)
    path = os.path.expanduser(given)
    if "\n" not in given and Path(path).is_file():
        return Target(namespace, context, None, path, KUBECONFIG_KEY)
    return Target(namespace, context, given, None, KUBECONFIG_KEY)


def _within(what: str, fn: Callable[[], T]) -> T:
    try:
        return call_within(CALL_DEADLINE_S, fn, what=what)
    except DeadlineExceeded as err:
        raise ClusterError(str(err)) from None


def _api_error(err: ApiException, what: str) -> ClusterError:
    try:
        body = json.loads(err.body) if err.body else {}
    except (ValueError, TypeError):
        body = {}
    reason = body.get("reason") if isinstance(body, dict) else None
    detail = f" ({reason})" if isinstance(reason, str) and reason else ""
    return ClusterError(f"{what}: the API server answered {err.status} {err.reason or ''}{detail}".rstrip())


class Applications:
    """Argo CD Applications in one namespace, through the official client."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        self._api = api
        self._objects = k8s_client.CustomObjectsApi(api)
        self.namespace = namespace

    def _call(self, what: str, fn: Callable[..., Any], name: str, *args: Any) -> Any:
        """One request under the deadline; an ApiException is the caller's, anything else one line."""

        def request() -> Any:
            return fn(GROUP, VERSION, self.namespace, PLURAL, name, *args, _request_timeout=REQUEST_TIMEOUT_S)

        try:
            return _within(what, request)
        except (ApiException, ClusterError):
            raise
        except Exception as exc:
            raise ClusterError(f"{what}: {_transport_reason(exc)}") from None

    def get(self, name: str) -> dict[str, Any] | None:
        """The Application `name`, or None when there is none."""
        what = f"reading Application {self.namespace}/{name}"
        try:
            found = self._call(what, self._objects.get_namespaced_custom_object, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise _api_error(err, what) from None
        return found if isinstance(found, dict) else None

    def merge_patch(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (`application/merge-patch+json`, the client's type for custom objects)."""
        what = f"patching Application {self.namespace}/{name}"
        try:
            done = self._call(what, self._objects.patch_namespaced_custom_object, name, dict(patch))
        except ApiException as err:
            if err.status == 409:
                raise Conflict(f"{what}: the Application changed meanwhile (409 Conflict)") from None
            raise _api_error(err, what) from None
        return done if isinstance(done, dict) else {}

    def close(self) -> None:
        """Release the connection pool."""
        with contextlib.suppress(Exception):  # closing a pool that never connected
            self._api.close()


class Conflict(ClusterError):
    """A write lost to a concurrent one (409): read again."""


def connect(target: Target) -> Applications:
    """A client for the target's Applications; ClusterError when the kubeconfig cannot be used."""
    configuration = type.__call__(k8s_client.Configuration)

    def load() -> None:
        if target.kubeconfig_text is not None:
            loaded = yaml.safe_load(target.kubeconfig_text)
            if not isinstance(loaded, dict):
                raise ConfigException(_NOT_A_MAPPING)
            k8s_config.load_kube_config_from_dict(
                loaded, context=target.context, client_configuration=configuration, persist_config=False
            )
        else:
            path = target.kubeconfig_path or os.path.expanduser("~/.kube/config")
            k8s_config.load_kube_config(
                config_file=path,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )

    what = f"loading {target.where}"
    try:
        _within(what, load)
    except ClusterError:
        raise
    except Exception as exc:  # the loader's own errors, and a type error on a malformed one
        raise ClusterError(f"{what}: {_config_reason(exc, target)}") from None
    # One attempt per request: the timeout bounds it, and a retry would multiply that bound.
    configuration.retries = 0
    return Applications(k8s_client.ApiClient(configuration=configuration), target.namespace)


def _config_reason(exc: BaseException, target: Target) -> str:
    """Why the kubeconfig could not be used, without echoing any of it (the loader's words may)."""
    text = str(exc)
    if isinstance(exc, (OSError, yaml.YAMLError)):
        return "no readable kubeconfig there"
    if text == _NOT_A_MAPPING:
        return "it is neither a file that exists nor a kubeconfig's YAML text"
    if "Expected object with name" in text and text.endswith("contexts list"):
        context = f"no context {target.context!r}" if target.context else "not its own current context"
        return f"it has {context}"
    if "Expected key current-context" in text:
        return f"it names no current context (set {CONTEXT_KEY})"
    if "No configuration found" in text or "file is empty" in text or text == "Invalid kube-config.":
        return "no kubeconfig there"
    if isinstance(exc, ConfigException):
        return "it is not a valid kubeconfig (an entry it needs is missing or malformed)"
    return f"it is not a valid kubeconfig ({type(exc).__name__})"


def _transport_reason(exc: BaseException) -> str:
    """Why a request got no answer, in words and the configured bounds (urllib3's text may carry a URL)."""
    reason = exc.reason if isinstance(exc, urllib3_errors.MaxRetryError) and exc.reason else exc
    connect_s, read_s = REQUEST_TIMEOUT_S
    if isinstance(reason, urllib3_errors.NewConnectionError):  # also a name that does not resolve
        return "could not connect to the API server (connection refused or unreachable)"
    if isinstance(reason, urllib3_errors.ConnectTimeoutError):
        return f"no connection to the API server within {connect_s:g} s"
    if isinstance(reason, urllib3_errors.ReadTimeoutError):
        return f"the API server did not answer in time ({connect_s:g} s to connect, {read_s:g} s to answer)"
    if isinstance(reason, urllib3_errors.SSLError):
        return "the TLS handshake with the API server failed"
    if isinstance(reason, urllib3_errors.LocationValueError):
        return "the kubeconfig's server is not a usable URL"
    if isinstance(reason, urllib3_errors.ProtocolError):
        return "the connection to the API server broke off"
    return type(reason).__name__
