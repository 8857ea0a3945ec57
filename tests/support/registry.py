"""Run the real CNCF Distribution registry (Debian's `docker-registry`) on 127.0.0.1, and push to it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from tests.support.certificates import KeyPair, make_keypair
from tests.support.processes import (
    LocalHTTPServer,
    QuietHandler,
    ServerProcess,
    free_port,
    serve_in_thread,
    stop_serving,
)

INSTALL_HINT = "apt-get install docker-registry apache2-utils"
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
SERVICE = "gitops-deploy-test-registry"
ISSUER = "gitops-deploy-test-issuer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def require_binaries() -> tuple[str, str]:
    """Paths of `docker-registry` and `htpasswd`; fails (never skips) with how to install them."""
    registry, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    missing = [name for name, path in (("docker-registry", registry), ("htpasswd", htpasswd)) if path is None]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} not found on PATH: install them with `{INSTALL_HINT}`")
    assert registry is not None and htpasswd is not None
    return registry, htpasswd


@dataclass
class TokenIssuer:
    """A Distribution token server: basic credentials in, a signed JWT with the granted scopes out."""

    users: Mapping[str, str]
    """Username -> password."""
    grants: Mapping[str, Sequence[str]]
    """Username -> the actions it may have on any repository (`pull`, `push`)."""
    keypair: KeyPair = field(default_factory=lambda: make_keypair("token-signer"))
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        """The token endpoint URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def mint(self, subject: str, access: Sequence[Mapping[str, Any]]) -> str:
        """A signed token the registry accepts (x5c header chains to the registry's rootcertbundle)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [dict(a) for a in access],
        }
        key = serialization.load_pem_private_key(self.keypair.key_pem, password=None)
        x5c = [base64.b64encode(self.keypair.cert_der).decode()]
        return jwt.encode(claims, key, algorithm="ES256", headers={"x5c": x5c})  # type: ignore[arg-type]

    def push_token(self, repo: str) -> str:
        """A pull+push token for a repository, for test setup."""
        return self.mint("setup", [{"type": "repository", "name": repo, "actions": ["pull", "push"]}])

    def _answer(self, query: dict[str, list[str]], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.requests.append(query)
        if not authorization or not authorization.startswith("Basic "):
            return 401, {"details": "credentials required"}
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        if self.users.get(user) != password or not secrets.compare_digest(self.users[user], password):
            return 401, {"details": "invalid username or password"}
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a in self.grants.get(user, ())]
            access.append({"type": kind, "name": name, "actions": allowed})
        token = self.mint(user, access)
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def start(self) -> TokenIssuer:
        """Serve on a free port in a daemon thread."""
        issuer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                status, body = issuer._answer(
                    parse_qs(urlparse(self.path).query), self.headers.get("Authorization")
                )
                self.reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            stop_serving(self._server, self._thread)


class LocalRegistry:
    """One `docker-registry serve` process with its own config, storage and auth, on 127.0.0.1."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        issuer: TokenIssuer | None = None,
        tls: bool = False,
        http_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`http_options` go into Distribution's `http` config, for example `host` (the base of the URLs
        it answers with, such as an upload's Location, as behind a proxy) or `relativeurls`."""
        self._binary, self._htpasswd = require_binaries()
        self._process = ServerProcess("docker-registry", prefix="registry-test-", log_name="registry.log")
        self.dir = self._process.dir
        self.port = free_port()
        self.issuer = issuer
        self.users = dict(users or {})
        self.http_options = dict(http_options or {})
        self.tls_cert: Path | None = None
        try:
            self._config_path = self._write_config(tls)
        except BaseException:
            self.stop()
            raise

    @property
    def server(self) -> str:
        """`127.0.0.1:<port>`, the `server` value clients use."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Scheme and host of the registry."""
        return f"{'https' if self.tls_cert else 'http'}://{self.server}"

    def _write_config(self, tls: bool) -> Path:
        http: dict[str, Any] = {"addr": self.server, "secret": secrets.token_hex(16)}
        http.update(self.http_options)
        if tls:
            key_path, cert_path = make_keypair("127.0.0.1", ip="127.0.0.1").write(self.dir, "tls")
            http["tls"] = {"certificate": str(cert_path), "key": str(key_path)}
            self.tls_cert = cert_path
        auth: dict[str, Any] = {}
        if self.issuer is not None:
            _, bundle = self.issuer.keypair.write(self.dir, "token")
            auth["token"] = {
                "realm": self.issuer.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        elif self.users:
            path = self.dir / "htpasswd"
            for i, (user, password) in enumerate(self.users.items()):
                # -i reads the password from stdin, so it is not on any command line.
                args = [self._htpasswd, "-B", "-i"] + (["-c"] if i == 0 else []) + [str(path), user]
                subprocess.run(args, input=password.encode(), check=True, capture_output=True, timeout=30)
            auth["htpasswd"] = {"realm": "gitops-deploy-test", "path": str(path)}
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")}, "delete": {"enabled": True}},
            "http": http,
            **({"auth": auth} if auth else {}),
        }
        path = self.dir / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The `docker-registry serve` process, once started."""
        return self._process.process

    def start(self) -> LocalRegistry:
        """Start the process and wait (bounded) until `/v2/` answers; stop it on any failure."""
        try:
            self._process.start(
                [self._binary, "serve", str(self._config_path)],
                lambda: httpx.get(f"{self.base_url}/v2/", verify=False, timeout=1.0),
                (httpx.HTTPError,),
                timeout=_START_TIMEOUT_S,
                interval=0.05,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self) -> str:
        """What the registry logged so far."""
        return self._process.log_text()

    def stop(self) -> None:
        """Stop the process (bounded) and remove its files."""
        self._process.stop(_STOP_TIMEOUT_S)
        self._process.remove()

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- pushing --------------------------------------------------------------------------------

    def _auth(self, repo: str) -> dict[str, str]:
        if self.issuer is not None:
            return {"Authorization": f"Bearer {self.issuer.push_token(repo)}"}
        if self.users:
            user, password = next(iter(self.users.items()))
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        return {}

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=self.tls_cert) if self.tls_cert else True,
            timeout=10,
        )

    def push_blob(self, repo: str, data: bytes) -> dict[str, Any]:
        """Upload one blob (monolithic POST then PUT); return its descriptor fields."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self._client() as http:
            started = http.post(f"/v2/{repo}/blobs/uploads/", headers=self._auth(repo))
            started.raise_for_status()
            location = started.headers["location"]
            sep = "&" if "?" in location else "?"
            done = http.put(
                f"{location}{sep}digest={digest}",
                content=data,
                headers={**self._auth(repo), "Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        return {"digest": digest, "size": len(data)}

    def push_manifest(
        self, repo: str, manifest: Mapping[str, Any], media_type: str, tag: str | None = None
    ) -> str:
        """PUT a manifest by tag or digest; return its digest."""
        body = json.dumps(manifest).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with self._client() as http:
            response = http.put(
                f"/v2/{repo}/manifests/{tag or digest}",
                content=body,
                headers={**self._auth(repo), "Content-Type": media_type},
            )
            response.raise_for_status()
        return digest

    def push_image(
        self,
        repo: str,
        layers: Sequence[bytes],
        *,
        platform: str = "linux/amd64",
        media_type: str = OCI_MANIFEST,
    ) -> PushedImage:
        """A small real image: a config blob, the given layer blobs and a manifest of `media_type`."""
        os_, arch, *variant = platform.split("/")
        config = json.dumps(
            {
                "architecture": arch,
                "os": os_,
                **({"variant": variant[0]} if variant else {}),
                "rootfs": {"type": "layers", "diff_ids": []},
                "config": {},
            }
        ).encode()
        docker = media_type == DOCKER_MANIFEST
        config_type = (
            "application/vnd.docker.container.image.v1+json"
            if docker
            else "application/vnd.oci.image.config.v1+json"
        )
        layer_type = (
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            if docker
            else "application/vnd.oci.image.layer.v1.tar+gzip"
        )
        config_desc = {"mediaType": config_type, **self.push_blob(repo, config)}
        layer_descs = [{"mediaType": layer_type, **self.push_blob(repo, layer)} for layer in layers]
        manifest = {"schemaVersion": 2, "mediaType": media_type, "config": config_desc, "layers": layer_descs}
        digest = self.push_manifest(repo, manifest, media_type)
        size = len(json.dumps(manifest).encode())
        return PushedImage(
            reference=f"{self.server}/{repo}@{digest}",
            digest=digest,
            media_type=media_type,
            manifest_size=size,
            config_size=config_desc["size"],
            size_bytes=config_desc["size"] + sum(d["size"] for d in layer_descs),
            layers=len(layer_descs),
            platform=platform,
        )

    def push_index(self, repo: str, images: Sequence[PushedImage], *, media_type: str = OCI_INDEX) -> str:
        """An image index (or Docker manifest list) over already pushed images; return its reference."""
        entries = []
        for image in images:
            os_, arch, *variant = image.platform.split("/")
            entries.append(
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": image.manifest_size,
                    "platform": {
                        "os": os_,
                        "architecture": arch,
                        **({"variant": variant[0]} if variant else {}),
                    },
                }
            )
        index = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        digest = self.push_manifest(repo, index, media_type)
        return f"{self.server}/{repo}@{digest}"


@dataclass(frozen=True)
class PushedImage:
    """What push_image uploaded."""

    reference: str
    digest: str
    media_type: str
    manifest_size: int
    config_size: int
    size_bytes: int
    layers: int
    platform: str


class NotARegistry(LocalHTTPServer):
    """An HTTP server on 127.0.0.1 that answers every path with 404 HTML, like a web server would."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.reply(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})

        super().__init__(Handler)


def random_layer(size: int) -> bytes:
    """Incompressible bytes standing in for a gzipped layer."""
    return secrets.token_bytes(size)


TokenFactory = Callable[[str], str]
