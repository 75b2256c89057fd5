"""Fault providers, one module per target kind, and the registry the fault activities dispatch on.

Adding a kind: write ``activities/faults/<kind>.py`` with module-level ``apply`` and ``revert`` coroutines
(and ``capture``: the :class:`FaultProvider` shape), then add its line to :data:`PROVIDERS`.
"""

from __future__ import annotations

from typing import Protocol

from gameday.activities.faults import command, docker, http, process, proxy
from gameday.model.drill import TargetKind
from gameday.model.records import FaultInput, FaultRecord


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


PROVIDERS: dict[TargetKind, FaultProvider] = {
    TargetKind.PROCESS: process,
    TargetKind.COMMAND: command,
    TargetKind.HTTP: http,
    TargetKind.DOCKER: docker,
    TargetKind.PROXY: proxy,
}
"""The provider of each target kind; a kind missing here is refused as ``UnsupportedFault``."""
