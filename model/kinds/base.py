"""What a kind says about itself: the shapes every kind module fills in, and the fault base they share.

A target kind (``process``, ``docker``, ``file``…) is one module under ``model/kinds/`` ending in a
:class:`TargetKindSpec` named ``KIND``: its target model, the fault models (actions) that apply to it, how
``--dry-run`` describes both, its static lock key, the problems only it can see in a drill, the paths a worker
policy checks, and the dotted name of the activities' module that applies and reverts it. A probe kind ends in
a :class:`ProbeKindSpec`. ``model.kinds.registry`` lists them; nothing else names a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from gameday.model.base import Strict
from gameday.model.units import Duration

DEFAULT_APPLY_BUDGET = timedelta(seconds=30)
"""How long applying a fault may take when its action has no time limit of its own."""
APPLY_SLACK = timedelta(seconds=20)
"""Added to a fault's own time limit (a command's, a request's, a container stop's) for its apply budget."""
DEFAULT_PROBE_TIMEOUT = timedelta(seconds=10)
"""A probe's time budget per sample when its kind is not in this registry (a newer drill on an older workflow)."""

Location = tuple[str | int, ...]
"""A field path inside a drill, as the loader locates problems: ``("targets", "db", "process", "restart")``."""


class FaultBase(Strict):
    action: str
    """What to do to the target; each action model narrows this to its own literal."""
    target: str
    """Name of a key under ``targets``."""
    duration: Duration | None = None
    """Revert this fault early, this long after it was applied (otherwise: at rollback)."""
    name: str | None = None
    """A label for logs and reports; defaults to ``<action> <target>``."""

    @property
    def label(self) -> str:
        return self.name or f"{self.action_name} {self.target}"

    @property
    def action_name(self) -> str:
        return self.action

    def apply_budget(self) -> timedelta:
        """How long one apply may take (the activity's start-to-close timeout): 30 s unless the action is timed."""
        return DEFAULT_APPLY_BUDGET


def timed(limit: timedelta) -> timedelta:
    """The apply budget of an action bounded by ``limit`` (its ``timeout``): the limit plus slack."""
    return limit + APPLY_SLACK


T = TypeVar("T", bound=BaseModel)


def spelled_lock_key(key: str) -> Callable[[Strict], str | None]:
    """The default static lock key: the kind and its spec as written (``docker:{"container":"db"}``)."""

    def lock_key(spec: Strict) -> str | None:
        return f"{key}:{spec.model_dump_json(exclude_defaults=True)}"

    return lock_key


def _no_problems(spec: Any, fault: FaultBase) -> list[tuple[Location, str]]:
    return []


def _no_paths(spec: Any) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class TargetKindSpec(Generic[T]):
    """Everything about one target kind.

    Attributes:
        key: the drill file's key (``targets.<name>.<key>``) and the kind's name everywhere.
        model: the target's model.
        faults: the fault models (actions) that apply to this kind, in the order the docs list them.
        describe: the target in words, for ``--dry-run``.
        describe_fault: what applying a fault to this kind does, and what its revert does, in words.
        lock_key: the static lock key (the resource's spelling); ``None``: the target takes no lock of its own.
        provider: the dotted module of the activities that capture, apply and revert this kind's faults
            (``capture``, ``apply``, ``revert``; optionally ``resolve_keys``, for target locks).
        held_by_worker: its faults act on something one worker process holds (a proxy's sockets): they run on
            that worker's own task queue.
        host_local: it lives on one host (a pid, a file, a local command, a Docker engine): its capture, apply,
            revert and lock resolution run on a worker of the target's site (``site:``, ``model/sites.py``).
        problems: what only this kind sees in a drill: ``(path under the target, message)`` for a fault on it.
        policy_paths: ``(field, path)`` of the target that a worker policy's ``paths`` rule must allow.
    """

    key: str
    model: type[T]
    faults: tuple[type[FaultBase], ...]
    describe: Callable[[T], str]
    describe_fault: Callable[[FaultBase], tuple[str, str]]
    lock_key: Callable[[T], str | None]
    provider: str
    held_by_worker: bool = False
    host_local: bool = False
    problems: Callable[[T, FaultBase], list[tuple[Location, str]]] = field(default=_no_problems)
    policy_paths: Callable[[T], list[tuple[str, str]]] = field(default=_no_paths)

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(_action_of(model) for model in self.faults)


@dataclass(frozen=True)
class ProbeKindSpec(Generic[T]):
    """Everything about one probe kind.

    Attributes:
        key: the drill file's key (``hypothesis[i].<key>``).
        model: the probe's model.
        sampler: the dotted module whose ``take_sample(spec, client)`` takes one sample.
        timeout: how long one sample may take (the probe's ``timeout``).
        host_local: its samples mean something on one host only (a local command): they run on a worker of the
            probe's site (``from:``).
    """

    key: str
    model: type[T]
    sampler: str
    timeout: Callable[[T], timedelta]
    host_local: bool = False


def _action_of(model: type[FaultBase]) -> str:
    """The literal ``action`` of a fault model (``PauseFault`` → ``pause``)."""
    (action,) = model.model_fields["action"].annotation.__args__  # type: ignore[union-attr]
    return str(action)
