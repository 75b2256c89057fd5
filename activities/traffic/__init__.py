"""Traffic during a drill: constant-arrival-rate HTTP load, measured without coordinated omission.

:class:`TrafficRun` sends ``observe.traffic`` (a :class:`~model.traffic.Traffic`) and reports a
:class:`~model.traffic.TrafficSummary`: per phase, per second and in total. :func:`merge` combines
window summaries exactly (their HDR histograms add).
"""

from gameday.activities.traffic.run import TrafficRun
from gameday.activities.traffic.send import Outcome
from gameday.activities.traffic.windows import merge

__all__ = ["Outcome", "TrafficRun", "merge"]
