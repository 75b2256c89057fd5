"""Faults on a ``chaostoolkit`` target: play an experiment's method; the revert runs its rollbacks (issue 16).

The method runs as chaoslib's does: activities in order, each with its pauses; a ``background`` activity starts
and the method goes on, all awaited at its end; an activity that fails is recorded ``failed`` and the method goes
on. The record's ``output`` is the method's journal entries as JSON (``{"run": [...]}``), the revert's the
rollbacks' (``{"rollbacks": [...]}``): ``report/journal.py`` reads them back. A failed rollback is recorded, never
retried: the revert does not raise for it, so each rollback runs once (again only if the worker dies mid-revert).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gameday.activities.ctk.runner import ActivityFailed, Entry, Resolution, resolve_context, run_activity
from gameday.activities.faults import narrow
from gameday.activities.faults.errors import NothingChanged
from gameday.model.budget import MAX_OUTPUT_BYTES
from gameday.model.ctk import ROLLBACKS_WITHIN
from gameday.model.ctk_format import Activity
from gameday.model.kinds.chaostoolkit import ChaosToolkitTarget, MethodFault
from gameday.model.records import FaultInput, FaultRecord


async def capture(inp: FaultInput) -> dict[str, str]:
    """Nothing to read: the rollbacks say themselves what they restore."""
    return {}


async def apply(inp: FaultInput) -> FaultRecord:
    """Play the method; the record's output is its journal entries.

    Raises:
        NothingChanged: the configuration or secrets cannot be resolved here: no activity ran.
    """
    _, fault = narrow(inp, ChaosToolkitTarget, MethodFault)
    try:
        resolution = resolve_context(fault.context)
    except ActivityFailed as exc:
        raise NothingChanged(str(exc)) from exc
    entries = await play(fault.method, resolution)
    return inp.record.model_copy(update={"output": entries_json("run", entries)})


async def revert(inp: FaultInput) -> FaultRecord:
    """Run every rollback in order, each once; a failed one is recorded in the output, not raised."""
    _, fault = narrow(inp, ChaosToolkitTarget, MethodFault)
    try:
        resolution = resolve_context(fault.context)
    except ActivityFailed as exc:
        failed = [_unrun(a, str(exc)) for a in fault.rollbacks]
        return inp.record.model_copy(update={"output": entries_json("rollbacks", failed, _method_rows(inp.record))})
    entries: list[Entry] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROLLBACKS_WITHIN
    for rollback in fault.rollbacks:
        left = deadline - loop.time()
        if left <= 0:
            entries.append(_unrun(rollback, f"not run: the rollbacks ran out of their {ROLLBACKS_WITHIN:g}s"))
            continue
        if rollback.provider.timeout is None or rollback.provider.time_limit > left:
            rollback = rollback.model_copy(update={"provider": rollback.provider.model_copy(update={"timeout": left})})
        entries.append(await run_activity(rollback, resolution))
    return inp.record.model_copy(update={"output": entries_json("rollbacks", entries, _method_rows(inp.record))})


def _method_rows(record: FaultRecord) -> list[dict[str, Any]]:
    """The method's entries the apply recorded (none when its worker died mid-method)."""
    try:
        data = json.loads(record.output) if record.output else {}
    except json.JSONDecodeError:
        return []
    rows = data.get("run", []) if isinstance(data, dict) else []
    return rows if isinstance(rows, list) else []


async def play(activities: list[Activity], resolution: Resolution) -> list[Entry]:
    """Run a method: in order, background activities alongside; entries in the order the method lists them."""
    slots: list[Entry | asyncio.Task[Entry]] = []
    try:
        for activity in activities:
            if activity.background:
                slots.append(asyncio.create_task(run_activity(activity, resolution)))
            else:
                slots.append(await run_activity(activity, resolution))
        return [slot if isinstance(slot, Entry) else await slot for slot in slots]
    finally:
        for slot in slots:
            if isinstance(slot, asyncio.Task) and not slot.done():
                slot.cancel()


def entries_json(key: str, entries: list[Entry], run: list[dict[str, Any]] | None = None) -> str:
    """``{"run": [...], key: [entries]}`` as JSON within the record's output budget: outputs cut, method's last
    first, until it fits."""
    rows: list[dict[str, Any]] = [entry.to_json() for entry in entries]
    data: dict[str, Any] = {"run": run or [], key: rows} if key != "run" else {"run": rows}
    text = json.dumps(data)
    for row in [*reversed(data["run"]), *(reversed(rows) if key != "run" else [])]:
        if len(text.encode()) <= MAX_OUTPUT_BYTES - 64:
            break
        row["output"] = "[cut: over the record's size budget]"
        text = json.dumps(data)
    return text


def _unrun(activity: Activity, why: str) -> Entry:
    return Entry(activity.name, activity.type, "failed", "", "", 0.0, None, why)
