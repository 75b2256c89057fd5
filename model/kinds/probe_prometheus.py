"""The ``prometheus`` probe kind: a PromQL query whose value must meet a condition.

The model stays in ``model/probe_prometheus.py`` (moved with the rest of the model by the namespace step);
sampler: ``activities/probes/prometheus.py``.
"""

from __future__ import annotations

from datetime import timedelta

from gameday.model.kinds.base import ProbeKindSpec
from gameday.model.probe_prometheus import PrometheusProbe


def timeout(spec: PrometheusProbe) -> timedelta:
    return spec.timeout


KIND = ProbeKindSpec(
    key="prometheus", model=PrometheusProbe, sampler="gameday.activities.probes.prometheus", timeout=timeout
)
