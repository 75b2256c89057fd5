"""The ``tcp`` probe kind: a connection to ``host:port`` that must open.

Sampler: ``activities/probes/tcp.py``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from gameday.model.base import Strict
from gameday.model.kinds.base import ProbeKindSpec
from gameday.model.units import Duration


class TcpProbe(Strict):
    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    timeout: Duration = timedelta(seconds=2)


def timeout(spec: TcpProbe) -> timedelta:
    return spec.timeout


KIND = ProbeKindSpec(key="tcp", model=TcpProbe, sampler="gameday.activities.probes.tcp", timeout=timeout)
