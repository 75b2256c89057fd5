"""The ``chaostoolkit`` probe kind: a Chaos Toolkit steady-state hypothesis, its probes in order (issue 16).

One sample runs every probe of the hypothesis in order and judges each output against its tolerance exactly as
chaoslib does (``activities/ctk/tolerance.py``), stopping at the first probe that fails or is out of tolerance:
the sample is ok when the steady state is met.

Sampler: ``activities/probes/chaostoolkit.py``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from gameday.model.base import Strict
from gameday.model.ctk_format import Activity, Context
from gameday.model.kinds.base import ProbeKindSpec


class ChaosToolkitProbe(Strict):
    probes: list[Activity] = Field(min_length=1)
    context: Context = Field(default_factory=Context)


def timeout(spec: ChaosToolkitProbe) -> timedelta:
    return timedelta(seconds=sum(p.budget for p in spec.probes) + 5)


KIND = ProbeKindSpec(
    key="chaostoolkit",
    model=ChaosToolkitProbe,
    sampler="gameday.activities.probes.chaostoolkit",
    timeout=timeout,
    host_local=True,
)
