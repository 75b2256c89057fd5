"""Probes: the steady-state hypothesis measured, one module per probe kind, judged against its tolerance.

The worker registers :func:`check_hypothesis`, :func:`observe` and :func:`verify_recovery`. Adding a probe
kind: a module with ``async def take_sample(spec, ...) -> Sample`` and a line in
``activities.probes.activities.take_sample``.
"""

from gameday.activities.probes.activities import check_hypothesis, observe, take_sample, verify_recovery
from gameday.activities.probes.judge import Sample, Tally, judge, judge_tally

__all__ = [
    "Sample",
    "Tally",
    "check_hypothesis",
    "judge",
    "judge_tally",
    "observe",
    "take_sample",
    "verify_recovery",
]
