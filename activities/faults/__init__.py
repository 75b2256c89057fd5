"""Fault providers, one module per target kind, found through the kind registry (``model.kinds.registry``).

Adding a kind: write ``activities/faults/<kind>.py`` with module-level ``capture``, ``apply`` and ``revert``
coroutines (the :class:`FaultProvider` shape) and name it as the ``provider`` of the kind's module under
``model/kinds/`` (docs/ADDING_A_KIND.md); nothing here changes.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, TypeVar, cast

from gameday.activities.faults.errors import UnsupportedFault
from gameday.model.kinds import registry
from gameday.model.kinds.base import FaultBase
from gameday.model.records import FaultInput, FaultRecord

_Spec = TypeVar("_Spec")
_Fault = TypeVar("_Fault", bound=FaultBase)


class FaultProvider(Protocol):
    """What a fault kind provides; a module with these two functions is one."""

    async def capture(self, inp: FaultInput) -> dict[str, str]:
        """Read, never change, the state of ``inp.target`` the revert must restore (stored as ``inp.before``)."""
        ...

    async def apply(self, inp: FaultInput) -> FaultRecord:
        """Apply ``inp.fault`` to ``inp.target``; return ``inp.record`` updated with exactly what changed."""
        ...

    async def revert(self, inp: FaultInput) -> FaultRecord:
        """Bring the target back to ``inp.before`` (else what ``inp.record.changed`` says, else the spec), whatever
        an interrupted apply did; idempotent, harmless if never applied."""
        ...


def provider(kind: str) -> FaultProvider | None:
    """The provider of target kind ``kind`` (its module, imported on first use); ``None`` for a kind this worker
    does not know, which the fault activities refuse as ``UnsupportedFault``."""
    spec = registry.target_kind(kind)
    if spec is None:
        return None
    return cast(FaultProvider, importlib.import_module(spec.provider))


def narrow(inp: FaultInput, target_model: type[_Spec], *faults: type[_Fault]) -> tuple[_Spec, _Fault]:
    """The fault's target spec and fault, checked to be of this provider's models.

    Raises:
        UnsupportedFault: the target is of another kind, or the action is not one of ``faults``.
    """
    spec: Any = inp.target.spec
    fault: Any = inp.fault
    if not isinstance(spec, target_model) or not isinstance(fault, faults):
        raise UnsupportedFault(f"action {inp.fault.action_name!r} does not apply to a {inp.target.kind} target")
    return spec, fault
