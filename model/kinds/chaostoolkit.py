"""The ``chaostoolkit`` target kind: a Chaos Toolkit experiment's method, run as one fault (issue 16).

Applying the fault plays the experiment's method (actions and probes in order, pauses, background activities);
its revert runs the experiment's rollbacks. The revert is registered before the method starts, like every fault's,
so the rollbacks run on every exit path: failure, stop, guardrail, cancel, ``max_duration``, a worker crash.

Faults: ``activities/faults/chaostoolkit.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from gameday.model.base import Strict
from gameday.model.ctk_format import Activity, Context
from gameday.model.kinds.base import APPLY_SLACK, FaultBase, TargetKindSpec
from gameday.model.kinds.probe_command import CommandProbe
from gameday.model.kinds.probe_http import HttpProbe

GUARD_EVERY = 0.5
"""Seconds between two samples of a wrapper guardrail's ``stop_when`` probe while the method plays."""


class ChaosToolkitTarget(Strict):
    """Where an experiment's activities run: a worker of the drill's site (its ``PATH``, its Python modules)."""

    experiment: str = ""
    """The experiment's title, for reports."""


class MethodGuard(Strict):
    """A wrapper guardrail's ``stop_when`` probe (exactly one of ``http``, ``command``): its success stops the run."""

    name: str
    http: HttpProbe | None = None
    command: CommandProbe | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MethodGuard:
        if (self.http is None) == (self.command is None):
            raise ValueError("a guardrail's stop_when needs exactly one of http, command")
        return self


class MethodFault(FaultBase):
    """The experiment's method, applied in order; ``rollbacks`` (``ref``s resolved) are its revert."""

    action: Literal["method"]
    method: list[Activity] = Field(min_length=1)
    rollbacks: list[Activity] = Field(default_factory=list)
    context: Context = Field(default_factory=Context)
    guardrails: list[MethodGuard] = Field(default_factory=list, max_length=8)
    """The wrapper's guardrails (``gameday run --guardrail``, a sidecar's ``guardrails``), ``stop_when`` only: the
    method's runner samples them while it plays; one that answers stops the run, as ``gameday stop`` does."""

    def apply_budget(self) -> timedelta:
        foreground = sum(a.budget for a in self.method if not a.background)
        background = max((a.budget for a in self.method if a.background), default=0.0)
        return timedelta(seconds=max(foreground, background)) + APPLY_SLACK

    def revert_budget(self) -> timedelta:
        return timedelta(seconds=sum(a.budget for a in self.rollbacks)) + APPLY_SLACK


def describe(spec: ChaosToolkitTarget) -> str:
    return f"Chaos Toolkit experiment {spec.experiment!r}" if spec.experiment else "a Chaos Toolkit experiment"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    assert isinstance(fault, MethodFault)
    method = ", ".join(f"{a.type} {a.name!r}" for a in fault.method)
    rollbacks = ", ".join(repr(a.name) for a in fault.rollbacks) or "nothing (the experiment has no rollbacks)"
    return f"play the method: {method}", f"run the rollbacks: {rollbacks}"


def lock_key(spec: ChaosToolkitTarget) -> None:
    """An experiment declares no resource gameday can name: it is locked only by its ``lock`` name."""
    return None


KIND = TargetKindSpec(
    key="chaostoolkit",
    model=ChaosToolkitTarget,
    faults=(MethodFault,),
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.chaostoolkit",
    host_local=True,
)
