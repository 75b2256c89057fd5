"""Target locks, the workflow's side: which resources a drill holds, and the activity arguments to hold them.

Two drills must never hold faults on the same target at once. A target's lock key names the resource, not the
drill's name for it, so two drill files calling one container ``db`` and ``postgres`` still collide.

The keys a drill takes are resolved in preflight by the ``resolve_targets`` activity (``activities/resolve.py``):
what the target *is* on the worker at that moment (a process's pid and start time, a pidfile's real path, a
container's id, the addresses a host name resolves to), so two spellings of one resource collide too. The static
keys below (``lock_key``, ``keys_of``) are spelling only: they decide whether a drill takes locks at all, and are
the keys of drills started before resolution existed, replayed unchanged.
"""

from __future__ import annotations

from datetime import datetime

from gameday.model.base import Record
from gameday.model.drill import Drill, Target
from gameday.model.kinds import registry


def lock_key(target: Target) -> str | None:
    """The resource ``target`` is: its ``lock`` name if given, else its address.

    A ``command`` target is the shell itself, with no address to collide on: it is locked only when it names
    the resource its commands touch with ``lock:``. ``None`` means no lock.
    """
    if target.lock:
        return f"lock:{target.lock}"
    kind = registry.target_kind(target.kind.value)
    return None if kind is None else kind.lock_key(target.spec)


def keys_of(drill: Drill) -> dict[str, str]:
    """Lock key → target name, for every target the drill has a fault on (each key once)."""
    keys: dict[str, str] = {}
    for fault in drill.faults:
        target = drill.targets.get(fault.target)
        key = None if target is None else lock_key(target)
        if key is not None:
            keys.setdefault(key, fault.target)
    return keys


def lockable_targets(drill: Drill) -> dict[str, Target]:
    """The drill's name → target, for every target it has a fault on that takes a lock (as ``keys_of``)."""
    targets: dict[str, Target] = {}
    for fault in drill.faults:
        target = drill.targets.get(fault.target)
        if target is not None and lock_key(target) is not None:
            targets.setdefault(fault.target, target)
    return targets


class ResolveInput(Record):
    """Argument of ``resolve_targets``."""

    targets: dict[str, Target]
    """The drill's name → target, for every target to lock (``lockable_targets``)."""


class ResolvedTarget(Record):
    """What one target is, as the worker found it in preflight: the lock keys of that resource."""

    name: str
    """The drill's name for the target."""
    keys: list[str]
    """Its lock keys: the ``lock`` name if given, and every key of the resource (``process:pid:4242@81234``,
    ``process:/run/db.pid``, ``docker:<full id>``, ``http:http://127.0.0.1:8080``, ``proxy:[::1]:15432``)."""


def resolved_keys(resolved: list[ResolvedTarget]) -> dict[str, str]:
    """Lock key → the drill's name for its target (a key two targets share is held once, under the first)."""
    keys: dict[str, str] = {}
    for target in resolved:
        for key in target.keys:
            keys.setdefault(key, target.name)
    return keys


class LockInput(Record):
    """Argument of ``acquire_targets`` and ``release_targets``."""

    run_id: str
    drill_name: str
    keys: dict[str, str]
    """Lock key → the drill's name for that target (for the message another drill gets)."""


class LockHolder(Record):
    """Who holds a lock: what ``gameday sweep`` and a refused drill are told."""

    key: str
    target: str
    run_id: str
    drill_name: str
    acquired_at: datetime
