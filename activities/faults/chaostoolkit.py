"""Faults on a ``chaostoolkit`` target: play an experiment's method; the revert runs its rollbacks (issue 16).

The method runs as chaoslib's does: activities in order, each with its pauses; a ``background`` activity starts
and the method goes on, all awaited at its end; an activity that fails is recorded ``failed`` and the method goes
on. The record's ``output`` is the method's journal entries as JSON (``{"run": [...]}``), the revert's the
rollbacks' (``{"rollbacks": [...]}``): ``report/journal.py`` reads them back. A failed rollback is recorded, never
retried: the revert does not raise for it, so each rollback runs once.

Both heartbeat their entries so far (``activities/faults/progress.py``): when the worker dies mid-method, the
workflow puts the method's entries done into the fault's record (the revert, and so the journal, gets them); when
it dies mid-revert, the retried revert on another worker skips the rollbacks the dead one finished (their entries
kept) and runs the rest: a rollback runs twice only when its worker died while it ran or before its heartbeat left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.service import RPCError

from gameday.activities.ctk.runner import ActivityFailed, Entry, Resolution, resolve_context, run_activity
from gameday.activities.faults import narrow, progress
from gameday.activities.faults.errors import NothingChanged
from gameday.model.budget import MAX_OUTPUT_BYTES, MAX_REASON_BYTES, clip
from gameday.model.ctk import ROLLBACKS_WITHIN
from gameday.model.ctk_format import Activity
from gameday.model.drill import Probe
from gameday.model.kinds.chaostoolkit import GUARD_EVERY, ChaosToolkitTarget, MethodFault, MethodGuard
from gameday.model.records import FaultInput, FaultRecord, StopRequest

RESUME_KEY = "rollbacks_done"
"""The key of the rollbacks' entries in a revert's progress (never in a finished revert's output, whose key is
``rollbacks``): a record left by a finished revert (a paused drill's, before its fault was applied again) is never
read as rollbacks already done."""


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
    playing = asyncio.ensure_future(
        play(fault.method, resolution, lambda done: progress.report(entries_json("run", done)))
    )
    if not fault.guardrails:
        entries = await playing
        return inp.record.model_copy(update={"output": entries_json("run", entries)})
    watching = asyncio.create_task(_watch(fault.guardrails, inp.run_id))
    try:
        await asyncio.wait([playing, watching], return_when=asyncio.FIRST_COMPLETED)
        if not playing.done():
            reason, told = watching.result()
            if not told:  # the run could not be told: end the method here; its rollbacks run all the same
                raise _Interrupted(reason)
            # The run was told to stop: it cancels this apply (the running process group killed) as `gameday stop`
            # does; until then the method goes on.
            await playing
    finally:
        for task in (watching, playing):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return inp.record.model_copy(update={"output": entries_json("run", playing.result())})


class _Interrupted(Exception):
    """The method was stopped by a wrapper guardrail (the run was told to stop): its rollbacks run."""


async def _watch(guardrails: list[MethodGuard], run_id: str) -> tuple[str, bool]:
    """Sample each guardrail's ``stop_when`` probe every :data:`GUARD_EVERY` seconds until one answers; then tell
    the run to stop (as ``gameday stop`` does, ``by: guardrail``). Returns why, and whether the run was told."""
    from gameday.activities.probes.activities import take_sample

    probes = [(g, Probe(name=f"guardrail {g.name}", http=g.http, command=g.command)) for g in guardrails]
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            for guard, probe in probes:
                if (await take_sample(probe, client)).ok:
                    reason = f"guardrail '{guard.name}' breached: stop_when probe answered: stop (during the method)"
                    return reason, await _tell_stop(run_id, reason)
            await asyncio.sleep(GUARD_EVERY)


async def _tell_stop(run_id: str, reason: str) -> bool:
    """Signal the run to stop; whether it was told (never outside a worker, or when Temporal cannot be reached)."""
    if not activity.in_activity():
        return False
    stop = StopRequest(reason=clip(reason, MAX_REASON_BYTES), by="guardrail", received_at=datetime.now(UTC))
    try:
        handle = activity.client().get_workflow_handle(run_id)
        await handle.signal("emergency_stop", stop, rpc_timeout=timedelta(seconds=5))
    except (RPCError, RuntimeError) as err:
        activity.logger.warning("run %s not told of its guardrail: %s", run_id, err)
        return False
    return True


async def revert(inp: FaultInput) -> FaultRecord:
    """Run every rollback in order, each once; a failed one is recorded in the output, not raised."""
    _, fault = narrow(inp, ChaosToolkitTarget, MethodFault)
    try:
        resolution = resolve_context(fault.context)
    except ActivityFailed as exc:
        failed = [_unrun(a, str(exc)) for a in fault.rollbacks]
        return inp.record.model_copy(update={"output": entries_json("rollbacks", failed, _method_rows(inp.record))})
    method_rows = _method_rows(inp.record)
    entries = _done_before(fault.rollbacks, progress.previous() or inp.record.output)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROLLBACKS_WITHIN
    for rollback in fault.rollbacks[len(entries) :]:
        left = deadline - loop.time()
        if left <= 0:
            entries.append(_unrun(rollback, f"not run: the rollbacks ran out of their {ROLLBACKS_WITHIN:g}s"))
            continue
        if rollback.provider.timeout is None or rollback.provider.time_limit > left:
            rollback = rollback.model_copy(update={"provider": rollback.provider.model_copy(update={"timeout": left})})
        entries.append(await run_activity(rollback, resolution))
        progress.report(entries_json(RESUME_KEY, entries, method_rows))
    return inp.record.model_copy(update={"output": entries_json("rollbacks", entries, method_rows)})


def _done_before(rollbacks: list[Activity], text: str | None) -> list[Entry]:
    """The entries of the rollbacks a previous attempt of this revert finished (its worker died), in order: the
    leading ones whose names match, so a changed list never skips a rollback it did not run.

    ``text``: the output that attempt last heartbeated, read back from this attempt's heartbeat details (a
    Temporal retry) or from the record (the workflow put it there when it retries the revert as a new activity).
    """
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return []
    rows = data.get(RESUME_KEY, []) if isinstance(data, dict) else []
    done: list[Entry] = []
    for rollback, row in zip(rollbacks, rows if isinstance(rows, list) else [], strict=False):
        if not isinstance(row, dict) or row.get("name") != rollback.name:
            break
        try:
            done.append(Entry(**{k: v for k, v in row.items() if k in Entry.__dataclass_fields__}))
        except TypeError:
            break
    return done


def _method_rows(record: FaultRecord) -> list[dict[str, Any]]:
    """The method's entries the apply recorded (none when its worker died mid-method)."""
    try:
        data = json.loads(record.output) if record.output else {}
    except json.JSONDecodeError:
        return []
    rows = data.get("run", []) if isinstance(data, dict) else []
    return rows if isinstance(rows, list) else []


async def play(
    activities: list[Activity], resolution: Resolution, done: Callable[[list[Entry]], None] | None = None
) -> list[Entry]:
    """Run a method: in order, background activities alongside; entries in the order the method lists them.

    ``done`` is told the entries finished so far (method order) after each foreground activity and at the end.
    """
    slots: list[Entry | asyncio.Task[Entry]] = []

    def finished() -> list[Entry]:
        return [
            s if isinstance(s, Entry) else s.result()
            for s in slots
            if isinstance(s, Entry) or (s.done() and not s.cancelled())
        ]

    try:
        for activity in activities:
            if activity.background:
                slots.append(asyncio.create_task(run_activity(activity, resolution)))
            else:
                slots.append(await run_activity(activity, resolution))
                if done is not None:
                    done(finished())
        entries = [slot if isinstance(slot, Entry) else await slot for slot in slots]
        if done is not None:
            done(entries)
        return entries
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
