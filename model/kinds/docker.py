"""The ``docker`` target kind: containers by name or by label (opt-in), and what can be done to them.

Faults: ``activities/faults/docker.py``. ``pause`` and ``kill`` are the process kind's models.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from gameday.model import budget
from gameday.model.base import Strict
from gameday.model.kinds.base import FaultBase, TargetKindSpec, spelled_lock_key, timed
from gameday.model.kinds.process import KillFault, PauseFault
from gameday.model.units import Duration, Percent, format_duration

OPT_IN_LABEL = "gameday.target"
"""A container selected by ``labels`` must also carry ``gameday.target=true``: chaos is opt-in per container."""


class DockerTarget(Strict):
    """Docker containers: one named ``container``, or those carrying ``labels`` (and the opt-in label).

    A labelled selection picks ``count`` containers, or ``percent`` of them (rounded up), at random; the
    pick is recorded, and ``seed`` makes it reproducible. Without ``count`` or ``percent`` every match is hit.
    """

    container: str | None = None
    """A container name or id. Naming a container is explicit consent: it needs no opt-in label."""
    labels: dict[str, str] | None = None
    """Select the running containers carrying every one of these labels and ``gameday.target=true``."""
    count: int | None = Field(default=None, ge=1, le=budget.MAX_CONTAINERS)
    percent: Percent | None = None
    seed: int | None = None
    """Seed of the random pick; without one a seed is drawn and recorded, so a pick can be replayed."""

    @model_validator(mode="after")
    def _one_selector(self) -> DockerTarget:
        if (self.container is None) == (self.labels is None):
            raise ValueError("a docker target needs exactly one of 'container' or 'labels'")
        if self.labels is not None and not self.labels:
            raise ValueError(f"'labels' needs at least one label (e.g. {{{OPT_IN_LABEL}: 'true'}})")
        if self.container is not None and (self.count, self.percent, self.seed) != (None, None, None):
            raise ValueError("'count', 'percent' and 'seed' select among 'labels' matches; a named container is one")
        if self.count is not None and self.percent is not None:
            raise ValueError("give at most one of 'count' and 'percent'")
        if self.percent is not None and self.percent <= 0:
            raise ValueError("'percent' must be above 0%")
        return self


class StopFault(FaultBase):
    """Stop the containers (SIGTERM, SIGKILL after ``timeout``); revert starts the ones that were running."""

    action: Literal["stop"]
    timeout: Duration = timedelta(seconds=10)

    def apply_budget(self) -> timedelta:
        return timed(self.timeout)


class RestartFault(FaultBase):
    """Restart the containers; the revert only makes sure they run (a restart has nothing to undo)."""

    action: Literal["restart"]
    timeout: Duration = timedelta(seconds=10)

    def apply_budget(self) -> timedelta:
        return timed(self.timeout)


class DisconnectFault(FaultBase):
    """Disconnect the containers from ``network``; revert reconnects them with their previous aliases and address."""

    action: Literal["disconnect"]
    network: str


class LimitCpuFault(FaultBase):
    """Cap the containers at ``cpus`` CPUs (``docker update``); revert restores the previous CPU limits."""

    action: Literal["limit_cpu"]
    cpus: float = Field(gt=0, le=1024)


MIN_MEMORY = 6 * 1024 * 1024
"""The smallest memory limit the Docker engine accepts."""

_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?")
_MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: object) -> object:
    """A size as docker's ``--memory`` writes it (``64m``, ``256MiB``, ``1g``: binary units) → bytes."""
    if isinstance(value, str):
        match = _MEMORY.fullmatch(value.strip().lower())
        if not match:
            raise ValueError(f"expected a size like 64m, 256MiB or 1g, got {value!r}")
        return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    return value


class LimitMemoryFault(FaultBase):
    """Cap the containers' memory at ``memory`` (``docker update``); revert restores the previous limits."""

    action: Literal["limit_memory"]
    memory: Annotated[int, BeforeValidator(memory_bytes), Field(ge=MIN_MEMORY)]
    """Bytes; written like docker's ``--memory``: ``64m``, ``256MiB``, ``1g`` (binary units)."""


class ExecFault(FaultBase):
    """Run ``run`` inside the containers (``sh -c``); ``revert`` undoes it and must be safe to run twice."""

    action: Literal["exec"]
    run: str
    revert: str
    timeout: Duration = timedelta(seconds=20)

    def apply_budget(self) -> timedelta:
        return timed(self.timeout)


DOCKER_FAULTS: tuple[type[FaultBase], ...] = (
    PauseFault,
    KillFault,
    StopFault,
    RestartFault,
    DisconnectFault,
    LimitCpuFault,
    LimitMemoryFault,
    ExecFault,
)


def describe(spec: DockerTarget) -> str:
    if spec.container is not None:
        return f"docker container {spec.container}"
    labels = ",".join(f"{k}={v}" for k, v in (spec.labels or {}).items())
    share = f"{spec.count} of" if spec.count else f"{spec.percent * 100:g}% of" if spec.percent else "all"
    return f"docker: {share} the running containers labelled {labels} (and gameday.target=true)"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    started_again = "start the containers that were running before"
    if isinstance(fault, PauseFault):
        return "docker pause the container(s)", "docker unpause them"
    if isinstance(fault, KillFault):
        return f"send {fault.signal} to the container(s)", started_again
    if isinstance(fault, StopFault):
        return f"docker stop (SIGKILL after {format_duration(fault.timeout)})", started_again
    if isinstance(fault, RestartFault):
        return "docker restart", "start any that are not running"
    if isinstance(fault, DisconnectFault):
        return f"disconnect from network {fault.network}", "reconnect to it"
    if isinstance(fault, LimitCpuFault):
        return f"limit to {fault.cpus:g} CPU(s)", "restore the previous CPU limits"
    if isinstance(fault, LimitMemoryFault):
        return f"limit memory to {fault.memory // 1024**2} MiB", "restore the previous memory limits"
    assert isinstance(fault, ExecFault)
    return f"exec `{fault.run}` in the container(s)", f"exec `{fault.revert}`"


KIND = TargetKindSpec(
    key="docker",
    model=DockerTarget,
    faults=DOCKER_FAULTS,
    describe=describe,
    describe_fault=describe_fault,
    lock_key=spelled_lock_key("docker"),
    provider="gameday.activities.faults.docker",
    host_local=True,
)
