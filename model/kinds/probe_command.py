"""The ``command`` probe kind: a shell command whose exit code (and output) says whether the system is healthy.

Sampler: ``activities/probes/command.py``.
"""

from __future__ import annotations

from datetime import timedelta

from gameday.model.base import Strict
from gameday.model.kinds.base import ProbeKindSpec
from gameday.model.units import Duration


class CommandProbe(Strict):
    run: str
    exit_code: int = 0
    stdout_contains: str | None = None
    timeout: Duration = timedelta(seconds=10)


def timeout(spec: CommandProbe) -> timedelta:
    return spec.timeout


KIND = ProbeKindSpec(
    key="command", model=CommandProbe, sampler="gameday.activities.probes.command", timeout=timeout, host_local=True
)
