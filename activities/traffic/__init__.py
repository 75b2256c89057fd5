"""Traffic during a drill: constant-arrival-rate HTTP load, measured without coordinated omission.

:class:`TrafficRun` sends ``observe.traffic`` (a :class:`~workflows.traffic.Traffic`) and reports a
:class:`~workflows.traffic.TrafficSummary`: per phase, per second and in total. :func:`merge` combines
window summaries exactly (their HDR histograms add).
"""

from activities.traffic.run import TrafficRun
from activities.traffic.send import Outcome
from activities.traffic.windows import merge

__all__ = ["Outcome", "TrafficRun", "merge"]
