"""Chaos Toolkit activities run on a worker (issue 16): providers, ``${name}`` substitution, tolerances.

``run_activity`` plays one action or probe of an experiment as chaoslib would and returns its journal entry;
the ``chaostoolkit`` fault (``activities/faults/chaostoolkit.py``) and probe (``activities/probes/chaostoolkit.py``)
kinds call it.
"""

from gameday.activities.ctk.runner import Entry, Resolution, resolve_context, run_activity
from gameday.activities.ctk.tolerance import within_tolerance

__all__ = ["Entry", "Resolution", "resolve_context", "run_activity", "within_tolerance"]
