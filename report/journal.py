"""A run of a Chaos Toolkit experiment as a Chaos Toolkit journal (``gameday report RUN_ID -f journal``, issue 16).

Built from the run record alone: the method's and rollbacks' entries are the ``chaostoolkit`` fault's apply and
revert outputs (``activities/faults/chaostoolkit.py``), the steady states the ``steady-state-before`` and
``steady-state-after`` probe results. gameday keeps each hypothesis probe's verdict, not its output: a probe's
entry has ``output: null``; the one out of tolerance is named by the result's problem (docs/CHAOSTOOLKIT.md).

Status as chaoslib writes it: ``completed`` (``deviated`` true when the hypothesis after the method was not met),
``failed`` (the hypothesis before the method was not met: nothing ran), ``interrupted`` (stopped, cancelled,
``max_duration``), ``aborted`` (the orchestration failed).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gameday.model.records import FaultRecord, ProbeResult, RunRecord, Verdict

BEFORE, AFTER = "steady-state-before", "steady-state-after"
_NAMED = re.compile(r"^probe '([^']*)'")


def is_experiment_run(record: RunRecord) -> bool:
    return any(fault.kind == "chaostoolkit" for fault in record.faults) or any(
        p.kind == "chaostoolkit" for p in record.probes
    )


def render_journal(record: RunRecord, experiment: dict[str, Any] | None = None) -> str:
    """The journal as JSON text."""
    return json.dumps(journal(record, experiment), indent=2, default=str)


def journal(record: RunRecord, experiment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run as a Chaos Toolkit journal; ``experiment`` is the experiment as its file says (else rebuilt from the
    record: titles and activity names only)."""
    fault = next((f for f in record.faults if f.kind == "chaostoolkit"), None)
    run = _entries(fault, "run")
    rollbacks = _entries(fault, "rollbacks")
    names = _hypothesis_names(experiment)
    before = _state(record, BEFORE, names)
    after = _state(record, AFTER, names)
    deviated = after is not None and not after["steady_state_met"]
    status = _status(record, before, after)
    end = record.ended_at or record.started_at
    return {
        "chaoslib-version": None,
        "platform": "gameday",
        "node": "gameday",
        "experiment": experiment if experiment is not None else _experiment(record, run, rollbacks),
        "start": record.started_at.isoformat(),
        "end": end.isoformat(),
        "duration": (end - record.started_at).total_seconds(),
        "status": status,
        "deviated": deviated,
        "steady_states": {"before": before, "after": after, "during": []},
        "run": run,
        "rollbacks": rollbacks,
        "gameday": {"run_id": record.run_id, "verdict": record.verdict.value if record.verdict else None},
    }


def _status(record: RunRecord, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    # chaoslib: a steady state not met is "completed" (deviated, after the method) unless one of its probes failed
    # to run, then "failed".
    for state in (before, after):
        if state is not None and any(p["status"] == "failed" for p in state["probes"]):
            return "failed"
    if record.verdict == Verdict.ABORTED:
        return "interrupted"
    if record.verdict == Verdict.ERROR:
        return "aborted"
    return "completed"


def _entries(fault: FaultRecord | None, key: str) -> list[dict[str, Any]]:
    if fault is None or not fault.output:
        return []
    try:
        data = json.loads(fault.output)
    except json.JSONDecodeError:
        return []
    if not isinstance(data, dict):
        return []
    rows = data.get(key)
    if rows is None and key == "rollbacks":  # the reverts never finished: the rollbacks a dead attempt had done
        rows = data.get("rollbacks_done")
    return [_journal_entry(row) for row in rows or [] if isinstance(row, dict)]


def _journal_entry(row: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "activity": {"type": row.get("type"), "name": row.get("name")},
        "output": row.get("output"),
        "status": row.get("status"),
        "start": row.get("start"),
        "end": row.get("end"),
        "duration": row.get("duration"),
    }
    if row.get("exception"):
        entry["exception"] = [row["exception"]]
    return entry


def _hypothesis_names(experiment: dict[str, Any] | None) -> list[str]:
    hypothesis = (experiment or {}).get("steady-state-hypothesis")
    probes = hypothesis.get("probes", []) if isinstance(hypothesis, dict) else []
    return [str(p.get("name")) for p in probes if isinstance(p, dict)]


def _state(record: RunRecord, name: str, names: list[str]) -> dict[str, Any] | None:
    results = [p for p in record.probes if p.probe == name and p.kind == "chaostoolkit"]
    if not results:
        return None
    result = results[-1]
    return {"steady_state_met": result.ok, "probes": _probe_entries(result, names)}


def _probe_entries(result: ProbeResult, names: list[str]) -> list[dict[str, Any]]:
    """The hypothesis's probes as chaoslib lists them: those that held (known from the experiment's names, in
    order), then the one that did not, where the check stopped. Outputs are not kept (``null``)."""
    failing = None if result.ok else next((m for p in result.problems if (m := _NAMED.match(p))), None)
    stop = failing.group(1) if failing else None
    held = names if stop is None or stop not in names else names[: names.index(stop)]
    entries: list[dict[str, Any]] = [
        {"activity": {"type": "probe", "name": n}, "output": None, "status": "succeeded", "tolerance_met": True}
        for n in (held if result.ok or failing else [])
    ]
    if result.ok:
        return entries
    failed = failing is not None and failing.string[failing.end() :].startswith(" failed:")
    entries.append(
        {
            "activity": {"type": "probe", "name": stop},
            "output": None,
            "status": "failed" if failed else "succeeded",
            "tolerance_met": False,
            "exception": list(result.problems),
        }
    )
    return entries


def _experiment(record: RunRecord, run: list[dict[str, Any]], rollbacks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": record.drill_name,
        "description": record.summary,
        "method": [e["activity"] for e in run],
        "rollbacks": [e["activity"] for e in rollbacks],
    }
