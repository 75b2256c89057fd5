"""Sites: where a host-local target lives, and the task queue that reaches a worker there (issue 14).

A worker belongs to one site (a host, a VM, a container with its own PID namespace or Docker engine). It polls
the shared task queue and its site's queue, :func:`site_queue`. A host-local target (a pid, a file, a local
command, a Docker engine: ``TargetKindSpec.host_local``) is captured, faulted, reverted and resolved only by a
worker of its site: the workflow sends those activities to the site's queue. Which sites are live is read from
Temporal (the pollers of the shared queue, whose identities name their site: :func:`worker_identity`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from gameday.model.base import Record
from gameday.model.drill import Drill, Target
from gameday.model.kinds import registry
from gameday.model.records import FaultInput

SITE_ENV = "GAMEDAY_SITE"
"""The environment variable that names a worker's site (``gameday worker --site``)."""
_IDENTITY_MARK = " site="
_CAPS_MARK = " caps="
SITE_REVERT_WORKFLOW = "SiteRevertWorkflow"
"""The workflow ``gameday sweep`` starts to revert one orphan on a worker of its site."""
SITE_REVERT_WINDOW = timedelta(minutes=5)
"""How long that revert waits for, and retries on, a worker of the site."""


def default_site() -> str:
    """A worker's site when none is given: ``GAMEDAY_SITE``, else the host name."""
    return os.environ.get(SITE_ENV) or socket.gethostname()


def site_queue(task_queue: str, site: str) -> str:
    """The task queue only the workers of ``site`` poll: ``gameday@site:db-host-1``."""
    return f"{task_queue}@site:{site}"


@dataclass(frozen=True)
class Capabilities:
    """What a worker can do, as it found it at start-up (``None``: unknown, e.g. a worker older than this).

    docker: the Docker engine ``DOCKER_HOST`` names (else the default socket) answered a ping.
    proxy: the worker hosts ``proxy`` targets (``hold_proxy`` on a queue of its own).
    version: the gameday package version the worker runs.
    """

    docker: bool | None = None
    proxy: bool | None = None
    version: str | None = None

    def token(self) -> str:
        """``docker:yes,proxy:yes,version:0.1.0``: no space, so it fits in an identity before the site."""
        parts = [f"{name}:{_word(value)}" for name, value in (("docker", self.docker), ("proxy", self.proxy))]
        if self.version:
            parts.append(f"version:{self.version}")
        return ",".join(parts)


def _word(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def worker_identity(site: str, capabilities: Capabilities | None = None) -> str:
    """A worker's Temporal identity: ``pid@host [caps=...] site=NAME``, so the pollers Temporal lists tell their
    site and what the worker can do. The site stays last: older CLIs read it with the same ``rpartition``."""
    caps = f"{_CAPS_MARK}{capabilities.token()}" if capabilities is not None else ""
    return f"{os.getpid()}@{socket.gethostname()}{caps}{_IDENTITY_MARK}{site}"


def capabilities_of_identity(identity: str) -> Capabilities:
    """What a worker identity says the worker can do; all unknown when it says nothing (an older worker)."""
    head, mark, _ = identity.rpartition(_IDENTITY_MARK)
    _, caps, token = (head if mark else identity).partition(_CAPS_MARK)
    if not caps:
        return Capabilities()
    fields = dict(part.split(":", 1) for part in token.split(" ", 1)[0].split(",") if ":" in part)
    flags = {"yes": True, "no": False}
    return Capabilities(
        docker=flags.get(fields.get("docker", "")),
        proxy=flags.get(fields.get("proxy", "")),
        version=fields.get("version") or None,
    )


def site_of_identity(identity: str) -> str | None:
    """The site a worker identity names, ``None`` for a worker that predates sites."""
    _, mark, site = identity.rpartition(_IDENTITY_MARK)
    return site if mark and site else None


def is_host_local(target: Target) -> bool:
    """Whether ``target`` lives on one host, so only a worker of its site may act on it."""
    kind = registry.target_kind(target.kind.value)
    return kind is not None and kind.host_local


def host_local_targets(drill: Drill) -> dict[str, str | None]:
    """The drill's name → declared site (``None``: not named) of every host-local target a fault acts on."""
    targets: dict[str, str | None] = {}
    for fault in drill.faults:
        target = drill.targets.get(fault.target)
        if target is not None and is_host_local(target):
            targets.setdefault(fault.target, target.site)
    return targets


def placed_probes(drill: Drill) -> dict[str, str | None]:
    """Probe name → its ``from:`` site, for every probe that says one or whose kind is host-local (``None``: none
    said). The others (an http probe without ``from:``) run anywhere."""
    probes: dict[str, str | None] = {}
    for probe in drill.hypothesis:
        kind = registry.probe_kind(probe.kind.value)
        if probe.from_ is not None or (kind is not None and kind.host_local):
            probes[probe.name] = probe.from_
    return probes


class SitesCheck(Record):
    """Argument of ``check_sites``: the sites a drill needs, checked in preflight before anything is touched."""

    task_queue: str
    """The shared task queue (site queues are named after it)."""
    targets: dict[str, str | None]
    """Host-local target name → its declared site, ``None`` when the drill file names none."""
    probes: dict[str, str | None] = {}
    """Placed probe name → its ``from:`` site, ``None`` when none is said (:func:`placed_probes`)."""


class SitesAnswer(Record):
    """Result of ``check_sites``: where each host-local target's activities run."""

    live: list[str]
    """The sites with a worker polling now, sorted."""
    placed: dict[str, str]
    """Host-local target name → the site whose queue its capture, apply, revert and resolution go to."""
    probe_site: str | None = None
    """The site whose queue the hypothesis probes run on; ``None``: anywhere (no placed probe)."""


class SiteRevert(Record):
    """Argument of ``SiteRevertWorkflow``: ``gameday sweep`` sends one orphan's revert to its site's workers."""

    fault: FaultInput
    """The orphan, as the fault ledger has it."""
    site: str
    """The site whose queue the revert goes to."""
