"""Run a private Docker Engine (Debian's `docker.io` dockerd) under a temp dir, and make small test images.

The daemon is started as the brief describes: no iptables, no bridge, the vfs storage driver, and its own
data-root, exec-root, pidfile, config file and unix socket, so it shares nothing with any other engine on
the machine. It cannot pull from Docker Hub: test images are `FROM scratch` plus files, or a root
filesystem brought in with the Engine API's import (`docker import`), such as busybox-static's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

import docker
import docker.errors
import requests.exceptions

from tests.support.processes import ServerProcess

INSTALL_HINT = "apt-get install docker.io busybox-static"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 20.0
_MNT_DETACH = 2
BUSYBOX_IMAGE = "gitops-test/busybox:1"
"""The name the busybox root filesystem is imported under: a base image with a shell for RUN steps."""
BUSYBOX_APPLETS = ("sh", "true", "false", "echo", "cat", "dd", "head", "ls", "mkdir", "rm", "printf")


def require_dockerd() -> str:
    """Path of `dockerd`; fails (never skips) with how to install it, or why it cannot run here."""
    path = shutil.which("dockerd") or next(
        (p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise RuntimeError(f"dockerd not found on PATH: install it with `{INSTALL_HINT}`")
    if os.geteuid() != 0:
        raise RuntimeError(
            f"dockerd ({path}) must run as root to start a private Docker Engine for the tests, and this "
            f"process runs as uid {os.geteuid()}: run the tests as root (as .ci/run does in a container)"
        )
    return path


def require_static_busybox() -> Path:
    """busybox-static's binary, which runs in an image with nothing else in it."""
    found = shutil.which("busybox")
    path = Path(found).resolve() if found else None
    if path is None or not path.is_file():
        raise RuntimeError(f"busybox not found on PATH: install it with `{INSTALL_HINT}`")
    if _has_interpreter(path.read_bytes()):
        raise RuntimeError(
            f"{path} is dynamically linked and cannot run alone in an image: install `busybox-static`"
        )
    return path


def _has_interpreter(elf: bytes) -> bool:
    """True when an ELF binary names a dynamic loader (a PT_INTERP program header)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:  # 64-bit only: what Debian ships on amd64 and arm64
        return True
    order: Literal["little", "big"] = "little" if elf[5] == 1 else "big"
    phoff = int.from_bytes(elf[32:40], order)
    phentsize = int.from_bytes(elf[54:56], order)
    phnum = int.from_bytes(elf[56:58], order)
    for i in range(phnum):
        start = phoff + i * phentsize
        if int.from_bytes(elf[start : start + 4], order) == 3:  # PT_INTERP
            return True
    return False


class LocalDockerEngine:
    """One `dockerd` process with everything of its own under a temp dir; `host` is its DOCKER_HOST."""

    def __init__(self) -> None:
        self._binary = require_dockerd()
        self._process = ServerProcess("dockerd", prefix="dockerd-test-", log_name="dockerd.log")
        self.dir = self._process.dir
        (self.dir / "daemon.json").write_text("{}")  # not /etc/docker/daemon.json: nothing shared

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The `dockerd` process, once started."""
        return self._process.process

    @property
    def host(self) -> str:
        """`unix://<tmp>/docker.sock`, the value for DOCKER_HOST."""
        return f"unix://{self.dir / 'docker.sock'}"

    def client(self, timeout: float = 120.0) -> contextlib.closing[docker.DockerClient]:
        """An Engine API client for this daemon, closed at the end of a `with` block."""
        return contextlib.closing(docker.DockerClient(base_url=self.host, timeout=int(timeout)))

    def start(self) -> LocalDockerEngine:
        """Start the daemon and wait (bounded) until the Engine API answers a ping; stop it on any failure."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalDockerEngine:
        d = self.dir

        def ping() -> None:
            with contextlib.closing(docker.DockerClient(base_url=self.host, timeout=2)) as probe:
                probe.ping()

        self._process.start(
            [
                self._binary,
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
                f"--data-root={d / 'data'}",
                f"--exec-root={d / 'exec'}",
                f"--pidfile={d / 'docker.pid'}",
                f"--config-file={d / 'daemon.json'}",
                f"--host={self.host}",
            ],
            ping,
            (docker.errors.DockerException, requests.exceptions.RequestException),
            timeout=_START_TIMEOUT_S,
            interval=0.1,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def log_tail(self, lines: int = 30) -> str:
        """The end of what the daemon logged."""
        return self._process.log_tail(lines)

    def stop(self) -> None:
        """Stop the daemon (bounded), its containerd, any mount it left, and remove its files."""
        self._process.stop(_STOP_TIMEOUT_S)
        self._kill_own_containerd()
        _unmount_under(self.dir)
        self._process.remove()

    def _kill_own_containerd(self) -> None:
        """The containerd this daemon started dies with it (Pdeathsig); make sure, by its recorded pid."""
        pidfile = self.dir / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return  # already gone
        if str(self.dir) in cmdline:  # only the one started under this temp dir
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> LocalDockerEngine:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _unmount_under(root: Path) -> None:
    """Detach every mount point under `root` (the daemon bind-mounts its netns and data-root there)."""
    prefix = str(root.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
            if (point + "/").startswith(prefix):
                points.append(point)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    for point in sorted(set(points), key=len, reverse=True):
        libc.umount2(point.encode(), _MNT_DETACH)


def write_context(directory: Path, dockerfile: str, files: Mapping[str, bytes] | None = None) -> Path:
    """A build context: the Dockerfile and the given files; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def import_busybox(client: docker.DockerClient, name: str = BUSYBOX_IMAGE) -> str:
    """Import a root filesystem of busybox-static and its applets (`docker import`); return the image ID."""
    busybox = require_static_busybox()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    repository, _, tag = name.rpartition(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag)
    return str(client.api.inspect_image(name)["Id"])
