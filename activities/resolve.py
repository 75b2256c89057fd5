"""``resolve_targets``: what each faulted target *is*, found in preflight, so target locks compare resources.

A drill file names a resource in many spellings: ``pid: 4242`` or the pidfile holding 4242, ``/run//db.pid`` or
``/run/db.pid``, a container's name or its id, ``localhost`` or ``127.0.0.1``, ``HTTP://Host:80/`` or
``http://host``. Locks keyed by spelling let two drills hold one resource, and one's revert undoes the other's
fault. This activity turns each target into the keys of the resource itself, on the worker that will fault it:

==========  ==================================================================================================
process     ``process:pid:<pid>@<start time>`` (``/proc/<pid>/stat`` field 22: the pid alone may be reused), and
            for a pidfile also ``process:<real path>`` (so a process restarted meanwhile is still the target)
docker      ``docker:<full container id>`` (asked of the engine); for ``labels``, the id of every opted-in
            container the pick may land on
http        ``http:<scheme>://<ip>:<port>`` for each address the host resolves to (default port filled in)
proxy       ``proxy:<ip>:<port>`` for each address the ``listen`` host resolves to
command     nothing to resolve: a shell is locked only by the name it gives in ``lock``
==========  ==================================================================================================

A target's ``lock`` name, when given, is held as well (``lock:<name>``). A target that cannot be resolved (no
pidfile, no such process or container, a host that does not resolve) fails the activity with ``TargetUnresolved``
naming it: the drill fails preflight and nothing is injected (after waiting up to its ``lock_wait``, which the
workflow's retry policy says). Resolution only reads, so an interrupted one is simply abandoned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import docker.errors
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from gameday.activities.faults import docker as docker_faults
from gameday.activities.faults import process as process_faults
from gameday.activities.faults import provider as fault_provider
from gameday.activities.faults.errors import ApplyError
from gameday.model.drill import Target, TargetKind
from gameday.model.kinds import registry
from gameday.model.locks import ResolvedTarget, ResolveInput

DEFAULT_PORTS = {"http": 80, "https": 443}
HEARTBEAT_EVERY = 1.0
"""Seconds between heartbeats while a resolution (a DNS answer, the Docker engine) is awaited."""

_T = TypeVar("_T")


class Unresolved(Exception):
    """The target is not there (or not reachable by name): the drill cannot lock it, so it must not fault it."""


class EngineUnavailable(Exception):
    """The Docker engine did not answer: worth another attempt."""


# --- pure normalisation ------------------------------------------------------------------------------------


def address(ip: str, port: int) -> str:
    """``ip:port`` in one spelling: IPv6 compressed and bracketed (``[::1]:80``), IPv4-mapped IPv6 as IPv4."""
    parsed = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return f"[{parsed.compressed}]:{port}" if parsed.version == 6 else f"{parsed.compressed}:{port}"


def http_origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL, lower-cased, the scheme's default port filled in.

    Raises:
        Unresolved: no host, or a port that is not a number in range.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased, IPv6 brackets removed, user:password@ dropped
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except (ValueError, KeyError) as err:
        raise Unresolved(f"base_url {url!r} has no valid port") from err
    if not host:
        raise Unresolved(f"base_url {url!r} names no host")
    return scheme, host, port


def split_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:80``, ``::1:80``, ``localhost:80``) → host without brackets, and port."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


# --- resolution, one resolver per target kind --------------------------------------------------------------


async def addresses(host: str, port: int) -> list[str]:
    """Every ``ip:port`` the host resolves to, normalised and sorted.

    Raises:
        Unresolved: the name does not resolve.
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise Unresolved(f"host {host!r} does not resolve: {err.strerror or err}") from err
    found = sorted({address(str(info[4][0]), port) for info in infos})
    if not found:
        raise Unresolved(f"host {host!r} resolves to no address")
    return found


def _process_keys(target: Target) -> list[str]:
    spec = target.process
    assert spec is not None
    try:
        pid = process_faults.resolve(spec)
    except ApplyError as err:  # no pidfile, no pid in it, or a pid gameday refuses to signal
        raise Unresolved(str(err)) from err
    stat = process_faults.read_stat(pid)
    if stat is None or not stat.alive:
        raise Unresolved(f"no running process with pid {pid}" + (f" (pidfile {spec.pidfile})" if spec.pidfile else ""))
    keys = [f"process:pid:{pid}@{stat.starttime}"]
    if spec.pidfile is not None:
        keys.insert(0, f"process:{os.path.realpath(spec.pidfile)}")
    return keys


async def _process(target: Target) -> list[str]:
    return await asyncio.to_thread(_process_keys, target)


def _containers(target: Target) -> list[str]:
    spec = target.docker
    assert spec is not None
    if spec.labels is not None:
        # Without count and percent the pick is every opted-in match: lock all the containers it may land on.
        spec = spec.model_copy(update={"count": None, "percent": None})
    try:
        client = docker_faults.engine()
    except docker.errors.DockerException as err:
        raise EngineUnavailable(f"Docker engine at {docker_faults.engine_address()} does not answer: {err}") from err
    try:
        picked = docker_faults.select(client, spec).containers
    except ApplyError as err:  # no such container, nothing matches, or matches without the opt-in label
        raise Unresolved(str(err)) from err
    except docker.errors.DockerException as err:
        raise EngineUnavailable(f"Docker engine at {docker_faults.engine_address()}: {err}") from err
    finally:
        client.close()
    return sorted(f"docker:{container.id}" for container in picked)


async def _docker(target: Target) -> list[str]:
    return await asyncio.to_thread(_containers, target)


async def _http(target: Target) -> list[str]:
    assert target.http is not None
    scheme, host, port = http_origin(target.http.base_url)
    return [f"http:{scheme}://{where}" for where in await addresses(host, port)]


async def _proxy(target: Target) -> list[str]:
    assert target.proxy is not None
    host, port = split_host_port(target.proxy.listen)
    return [f"proxy:{where}" for where in await addresses(host, port)]


async def _command(target: Target) -> list[str]:
    return []  # the local shell is no resource of its own: only its ``lock`` name is held


RESOLVERS: dict[TargetKind, Callable[[Target], Awaitable[list[str]]]] = {
    TargetKind.PROCESS: _process,
    TargetKind.DOCKER: _docker,
    TargetKind.HTTP: _http,
    TargetKind.PROXY: _proxy,
    TargetKind.COMMAND: _command,
}


async def _resource_keys(target: Target) -> list[str]:
    """The built-in kinds' resolvers above; a kind added since resolves through its provider's ``resolve_keys``
    (``activities/faults/<kind>.py``), else holds its static lock key (``model/kinds/<kind>.py``)."""
    resolver = RESOLVERS.get(target.kind)
    if resolver is not None:
        return await resolver(target)
    resolve_keys = getattr(fault_provider(target.kind.value), "resolve_keys", None)
    if resolve_keys is not None:
        keys: list[str] = await resolve_keys(target.spec)
        return keys
    kind = registry.target_kind(target.kind.value)
    key = None if kind is None else kind.lock_key(target.spec)
    return [] if key is None else [key]


async def resolve_target(name: str, target: Target) -> ResolvedTarget:
    """The lock keys of one target: its ``lock`` name if given, then the keys of the resource it is now.

    Raises:
        Unresolved: the target is not there; the message names it.
        EngineUnavailable: the Docker engine did not answer.
    """
    named = [f"lock:{target.lock}"] if target.lock else []
    try:
        return ResolvedTarget(name=name, keys=named + await _resource_keys(target))
    except Unresolved as err:
        raise Unresolved(f"target '{name}' ({target.kind.value}) cannot be resolved: {err}") from err


async def _heartbeating(work: Awaitable[_T]) -> _T:
    """Await ``work``, heartbeating meanwhile, so a stop reaches this activity while DNS or the engine is slow."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # on cancellation: resolution only reads, so abandoning it leaves nothing behind


@activity.defn(name="resolve_targets")
async def resolve_targets(inp: ResolveInput) -> list[ResolvedTarget]:
    """Resolve every target of ``inp`` to the lock keys of the resource it is, on this worker, now.

    Raises:
        ApplicationError: ``TargetUnresolved`` naming a target that is not there (the workflow retries it only
            while the drill's ``lock_wait`` lasts); ``TargetResolveFailed`` when the Docker engine does not answer.
    """
    try:
        return await _heartbeating(asyncio.gather(*(resolve_target(n, t) for n, t in inp.targets.items())))
    except Unresolved as err:
        raise ApplicationError(str(err), type="TargetUnresolved", category=ApplicationErrorCategory.BENIGN) from err
    except EngineUnavailable as err:
        raise ApplicationError(str(err), type="TargetResolveFailed") from err
