"""Real Docker for tests: the engine (started here when it is not running and we may), a tiny local image,
and containers that are always removed.

No registry is reachable, so the image is built with ``docker import`` from a rootfs holding only Debian's
busybox-static (``httpd`` serves HTTP; ``sleep`` idles). With ``GAMEDAY_REQUIRE_DOCKER=1`` (CI) a missing
engine fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from docker.models.containers import Container

from gameday.model.drill import OPT_IN_LABEL
from tests.conftest import require

IMAGE = "gameday-test/busybox:1"
TEST_LABEL = "gameday.test"
"""Every container a test creates carries this label (value: the session), so a crash leaves none behind."""
SESSION = uuid.uuid4().hex[:8]
APPLETS = ("sh", "httpd", "sleep", "touch", "rm", "test", "ls", "cat", "true", "echo", "kill", "ip")
PARALLEL = 8
"""Engine calls made side by side when tests create or remove many containers."""
DOCKERD_FLAGS = ("--storage-driver=vfs", "--iptables=false", "--bridge=none")
"""How CI runs the engine here: no overlay filesystem, no firewall rules, no default bridge."""


def _missing(what: str) -> None:
    if os.environ.get("GAMEDAY_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{what} (GAMEDAY_REQUIRE_DOCKER=1)", pytrace=False)
    require(False, what)


def _ping() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException:
        return None
    return client


def _start_dockerd(log: Path) -> subprocess.Popen[bytes] | None:
    """Start the engine the way ``.ci/provision-docker`` does, when we are root and it is installed."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0 or os.environ.get("DOCKER_HOST"):
        return None
    with log.open("ab") as out:
        proc = subprocess.Popen([dockerd, *DOCKERD_FLAGS], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc


@dataclass
class Engine:
    """The engine the tests use, and the dockerd process if this session started it."""

    client: docker.DockerClient
    started: subprocess.Popen[bytes] | None = None


def engine() -> Iterator[Engine]:
    """The Docker engine (a generator for a session fixture): found, or started here, or fail/skip."""
    client = _ping()
    started = None
    if client is None:
        log = Path(tempfile.gettempdir()) / "gameday-test-dockerd.log"
        started = _start_dockerd(log)
        if started is None:
            _missing("a Docker engine (install docker.io; run dockerd, or run the tests as root to start one)")
        deadline = time.monotonic() + 30
        while client is None and time.monotonic() < deadline and started is not None and started.poll() is None:
            time.sleep(0.2)
            client = _ping()
        if client is None:
            if started is not None and started.poll() is None:
                started.terminate()
            _missing(f"a Docker engine (dockerd did not come up; see {log})")
    assert client is not None
    try:
        yield Engine(client, started)
    finally:
        for leftover in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={SESSION}"}):
            _remove(leftover)
        client.close()
        if started is not None:
            started.terminate()
            started.wait(timeout=30)


def build_image(client: docker.DockerClient) -> str:
    """The busybox test image, imported from a rootfs of busybox-static unless it is there already."""
    try:
        client.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        _missing("busybox-static (apt-get install busybox-static) to build the test image")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for directory in ("bin", "www", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        page = b"ok\n"
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))
    repository, tag = IMAGE.split(":")
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag)
    check = client.containers.run(IMAGE, ["true"], remove=True, network_mode="none")
    assert check in (b"", None), check
    return IMAGE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remove(container: Container) -> None:
    try:
        container.reload()
        if container.status == "paused":
            container.unpause()
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


async def http_status(port: int, wait: float = 0.5) -> int | None:
    """The status of ``GET /`` on the loopback port, or ``None`` when it does not answer within ``wait`` seconds."""
    try:
        async with httpx.AsyncClient(timeout=wait) as client:
            return (await client.get(f"http://127.0.0.1:{port}/")).status_code
    except httpx.HTTPError:
        return None


@dataclass
class HttpContainer:
    """A busybox ``httpd`` container on the host network, serving ``ok`` on a port of its own."""

    container: Container
    port: int

    @property
    def id(self) -> str:
        return str(self.container.id)

    @property
    def name(self) -> str:
        return str(self.container.name)

    def status(self) -> str:
        self.container.reload()
        return str(self.container.status)

    def attrs(self) -> dict[str, Any]:
        self.container.reload()
        return dict(self.container.attrs)


@dataclass
class Containers:
    """Creates test containers, and removes every one of them at teardown."""

    client: docker.DockerClient
    image: str
    created: list[Container] = field(default_factory=list)
    _networks: list[str] = field(default_factory=list)

    def run(
        self, command: list[str], *, labels: dict[str, str] | None = None, opt_in: bool = True, **options: Any
    ) -> Container:
        all_labels = {TEST_LABEL: SESSION, **(labels or {})}
        if opt_in:
            all_labels[OPT_IN_LABEL] = "true"
        if "network" not in options:
            options.setdefault("network_mode", "none")
        container = self.client.containers.run(
            self.image, command, detach=True, name=f"gd-test-{uuid.uuid4().hex[:10]}", labels=all_labels, **options
        )
        self.created.append(container)
        return container

    def sleeper(self, **kwargs: Any) -> Container:
        """An idle container (``sleep``), on no network unless ``network`` is given."""
        return self.run(["sleep", "3600"], **kwargs)

    def sleepers(self, count: int, **kwargs: Any) -> list[Container]:
        """``count`` idle containers alike, created side by side (a fleet of 65 one after the other takes long)."""
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            return list(pool.map(lambda _: self.sleeper(**kwargs), range(count)))

    async def http(self, **kwargs: Any) -> HttpContainer:
        """An ``httpd`` container on the host network; returns once it answers 200."""
        port = free_port()
        container = self.run(["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"], network_mode="host", **kwargs)
        deadline = time.monotonic() + 15
        while await http_status(port) != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"container {container.name} never served HTTP on {port}")
            await asyncio.sleep(0.05)
        return HttpContainer(container, port)

    def network(self) -> str:
        """An internal (no outside route) bridge network, removed at teardown."""
        name = f"gd-test-net-{uuid.uuid4().hex[:8]}"
        self.client.networks.create(name, driver="bridge", internal=True, labels={TEST_LABEL: SESSION})
        self._networks.append(name)
        return name

    def cleanup(self) -> None:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(pool.map(_remove, self.created))
        for name in self._networks:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.networks.get(name).remove()
