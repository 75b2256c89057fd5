"""The ``host`` target kind: the worker's host itself, and resource faults on it (CPU, memory, disk, connections, io).

``targets.<name>.host: {}`` (with ``site:`` on the target, the host of that site). Each fault runs a load: a
process group started by the worker that applies it, every process of which dies with that worker (a parent-death
signal on each), and ends itself at a deadline of its own. The revert stops the group and removes exactly what it
left (files named after the run and the fault's index, so a revert on another worker of the host finds them).
The worker refuses loads above its own limits (``GAMEDAY_HOST_*``, ``config/app.py``). Faults:
``activities/faults/host.py``; the load itself: ``activities/faults/host_load.py``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from gameday.model.base import Strict
from gameday.model.kinds.base import DEFAULT_APPLY_BUDGET, FaultBase, TargetKindSpec
from gameday.model.kinds.docker import memory_bytes
from gameday.model.kinds.proxy import HostPort
from gameday.model.units import Percent, parse_percent

FILL_RATE = 200 * 1024**2
"""Bytes per second a ``disk_fill`` that must write (no ``fallocate``) is budgeted to write."""
MAX_CONNECTIONS = 100_000
"""The most connections one ``connections`` fault may ask for (a worker's own cap is usually lower)."""
_RATE = re.compile(r"(.+?)\s*/\s*s(?:ec(?:ond)?)?")


class HostTarget(Strict):
    """The host a worker runs on: the worker's own, or the site's (``site:`` on the target). No keys."""


def _memory_size(value: object) -> object:
    """``512MiB`` → ``"536870912"``; ``25%`` → ``"25%"`` (of the host's memory, read when applied)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        share = parse_percent(value)
        if not 0 < share <= 1:
            raise ValueError(f"expected a percentage above 0% and at most 100%, got {value!r}")
        return f"{share * 100:g}%"
    found = memory_bytes(value)
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ValueError(f"expected a size like 512MiB or 1g, or a percentage like 25%, got {value!r}")
    return str(found)


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("expected an absolute path (starting with /)")
    if "\0" in value:
        raise ValueError("a path cannot hold a NUL character")
    return value


def _byte_rate(value: object) -> object:
    """``50MiB/s`` → bytes per second."""
    if isinstance(value, str):
        match = _RATE.fullmatch(value.strip())
        if not match:
            raise ValueError(f"expected a rate like 50MiB/s, got {value!r}")
        return memory_bytes(match.group(1))
    return value


Size = Annotated[int, BeforeValidator(memory_bytes), Field(ge=1)]
AbsolutePath = Annotated[str, AfterValidator(_absolute)]


class CpuFault(FaultBase):
    """Burn ``cores`` CPU cores (default: all of the host's) at ``load`` each, until reverted."""

    action: Literal["cpu"]
    cores: float | None = Field(default=None, gt=0, le=1024)
    """How many cores to keep busy (``1.5``: one full, one half); default every core of the host."""
    load: Percent = 1.0
    """How busy each of them is (``50%``: half of each 100 ms)."""

    @field_validator("load")
    @classmethod
    def _load_in_range(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("expected a percentage above 0% and at most 100%")
        return value


class MemoryFault(FaultBase):
    """Allocate ``size`` of memory and touch every page, held resident until reverted."""

    action: Literal["memory"]
    size: Annotated[str, BeforeValidator(_memory_size)]
    """``512MiB`` (binary units), or a percentage of the host's memory (``25%``)."""

    def size_of(self, total: int) -> int:
        """Bytes asked for, on a host with ``total`` bytes of memory."""
        if self.size.endswith("%"):
            return int(total * float(self.size[:-1]) / 100)
        return int(self.size)


class DiskFillFault(FaultBase):
    """Write one file into ``path`` (a directory): ``size`` bytes, or until ``leave_free`` is left; revert removes
    it."""

    action: Literal["disk_fill"]
    path: AbsolutePath
    """The directory to fill (its file system fills); refused outside the worker's allowed roots."""
    size: Size | None = None
    """Bytes to write (``100MiB``)."""
    leave_free: Annotated[int, BeforeValidator(memory_bytes), Field(ge=0)] | None = None
    """Fill until this much is left free on the file system (``1GiB``), instead of ``size``."""

    @model_validator(mode="after")
    def _one_amount(self) -> DiskFillFault:
        if (self.size is None) == (self.leave_free is None):
            raise ValueError("give exactly one of 'size' and 'leave_free'")
        return self

    def apply_budget(self) -> timedelta:
        if self.size is None:
            return timedelta(minutes=5)
        return DEFAULT_APPLY_BUDGET + timedelta(seconds=self.size / FILL_RATE)


class ConnectionsFault(FaultBase):
    """Open ``count`` TCP connections to ``address`` and hold them (re-opening any the server closes) until reverted."""

    action: Literal["connections"]
    address: HostPort
    """``host:port`` of the server whose connection slots, pool or accept queue to exhaust."""
    count: int = Field(ge=1, le=MAX_CONNECTIONS)
    send: str | None = None
    """Bytes written once on each connection after it opens (each character one byte, ``\\x00``-``\\xff``)."""
    postgres_user: str | None = None
    """Send a PostgreSQL startup packet as this user on each connection: each then takes one of the server's
    ``max_connections`` slots (and is closed by it after ``authentication_timeout`` unless the user needs no
    password; the hold opens it again)."""

    @field_validator("send")
    @classmethod
    def _bytes(cls, value: str | None) -> str | None:
        if value is not None and any(ord(ch) > 0xFF for ch in value):
            raise ValueError("each character of 'send' is one byte: \\x00 to \\xff")
        return value

    @model_validator(mode="after")
    def _one_greeting(self) -> ConnectionsFault:
        if self.send is not None and self.postgres_user is not None:
            raise ValueError("give at most one of 'send' and 'postgres_user'")
        return self

    def apply_budget(self) -> timedelta:
        return DEFAULT_APPLY_BUDGET + timedelta(seconds=self.count / 200)


class IoFault(FaultBase):
    """Write to one file in ``path`` (a directory) at ``rate``, synced, over and over, until reverted; the revert
    removes it."""

    action: Literal["io"]
    path: AbsolutePath
    """The directory to write in; refused outside the worker's allowed roots."""
    rate: Annotated[int, BeforeValidator(_byte_rate), Field(ge=1)]
    """Bytes per second, written like ``50MiB/s``."""
    size: Size = 64 * 1024**2
    """The file's size: writes wrap around to its start (``64MiB``)."""


FAULTS: tuple[type[FaultBase], ...] = (CpuFault, MemoryFault, DiskFillFault, ConnectionsFault, IoFault)


def describe(spec: HostTarget) -> str:
    return "host (the worker's, or its site's)"


def _size(value: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value}B"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    stop = "stop the load's process group (it also dies with its worker)"
    if isinstance(fault, CpuFault):
        cores = "every core" if fault.cores is None else f"{fault.cores:g} core(s)"
        return f"burn {cores} at {fault.load * 100:g}% in a load process group", stop
    if isinstance(fault, MemoryFault):
        size = fault.size if fault.size.endswith("%") else _size(int(fault.size))
        return (
            f"allocate and touch {size} of memory in a load process (refused above the worker's "
            "GAMEDAY_HOST_MAX_MEMORY)",
            stop + ": the memory is freed",
        )
    if isinstance(fault, DiskFillFault):
        amount = f"{_size(fault.size)}" if fault.size is not None else f"until {_size(fault.leave_free or 0)} is free"
        return (
            f"write one file in {fault.path} ({amount}; refused outside the worker's GAMEDAY_HOST_FILL_ROOTS)",
            "remove exactly that file (named by run and fault)",
        )
    if isinstance(fault, ConnectionsFault):
        greeting = " sending a PostgreSQL startup packet" if fault.postgres_user else ""
        greeting = " sending a greeting" if fault.send is not None else greeting
        return (
            f"open and hold {fault.count} TCP connection(s) to {fault.address}{greeting} (refused above the "
            "worker's GAMEDAY_HOST_MAX_CONNECTIONS)",
            stop + ": the connections close",
        )
    assert isinstance(fault, IoFault)
    return (
        f"write {_size(fault.rate)}/s (synced) to one {_size(fault.size)} file in {fault.path} (refused outside the "
        "worker's GAMEDAY_HOST_FILL_ROOTS)",
        stop + " and remove that file",
    )


def lock_key(spec: HostTarget) -> None:
    """No static key: a host fault locks the resource it loads (``cpu``, ``disk_fill:<mount point>``,
    ``tcp:<address>``…) on the host itself when applied (``activities/faults/host.py``), so two drills on one host
    collide only on one resource."""
    return None


def resource_key(fault: FaultBase) -> str:
    """The resource a host fault loads, as the drill spells it (the plan, ``capture``). The host-side lock of a
    ``disk_fill`` or ``io`` is keyed by what the path is on the host (its file system, its real directory):
    ``activities/faults/host.py::host_resource``."""
    if isinstance(fault, DiskFillFault | IoFault):
        return f"{fault.action}:{fault.path.rstrip('/') or '/'}"
    if isinstance(fault, ConnectionsFault):
        return f"tcp:{fault.address}"
    return fault.action


def held_facts(changed: dict[str, str]) -> dict[str, Any]:
    """What a revert recorded as held (``held_*`` keys of ``FaultRecord.changed``), for reports and tests."""
    return {k.removeprefix("held_"): v for k, v in changed.items() if k.startswith("held_")}


KIND = TargetKindSpec(
    key="host",
    model=HostTarget,
    faults=FAULTS,
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.host",
    host_local=True,
)
