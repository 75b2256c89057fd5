"""The payload budget (issue 11, item 1): a drill at every limit runs to its verdict with every payload small.

A drill used to be able to grow its own record past Temporal's 2 MB payload limit: every workflow task failed
from then on, with faults applied and nothing able to stop it. Now the loader refuses a drill over the limits of
``model.budget`` and activities cut what they hand back. These tests run the biggest drill the limits allow
on the real dev server and measure every event of its history; ``tests/cli/test_validate_limits.py`` shows each
limit refused one step past it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model import budget
from gameday.model.loader import parse_drill
from gameday.model.records import DrillInput, FaultState, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import HttpService, finish, running_worker

pytestmark = pytest.mark.integration

KIB = budget.KIB
BIG_EVENT = 1024 * KIB
"""No event of a drill at the limits may carry more than this: half of Temporal's 2 MB per payload."""


def name(prefix: str, n: int) -> str:
    """A name of exactly MAX_NAME_CHARS characters."""
    base = f"{prefix}-{n}-"
    return base + "x" * (budget.MAX_NAME_CHARS - len(base))


def padded(command: str, size: int) -> str:
    """``command`` followed by a shell comment, ``size`` bytes in all."""
    return command + " #" + "p" * (size - len(command) - 2)


def limit_drill(port: int, *, print_bytes: int = 200_000, faults: int = budget.MAX_FAULTS) -> str:
    """The biggest drill the limits allow, within the expanded-size bound: every count, name, command and JSON
    body at its maximum, each fault printing ``print_bytes`` bytes when applied and when reverted.

    Command texts are written once and repeated through YAML aliases, as a drill author may. (The JSON body
    limits need an http fault; ``tests/cli/test_validate_limits.py`` covers them.)
    """
    # NUL bytes: the worst output for a JSON payload, where each one is escaped to six bytes.
    run = padded(f"head -c {print_bytes} /dev/zero", budget.MAX_COMMAND_BYTES)
    revert = padded(f"head -c {print_bytes} /dev/zero; echo reverted", budget.MAX_TEXT_BYTES)
    lines = [
        "name: at-the-limits",
        f"description: {json.dumps('d' * budget.MAX_TEXT_BYTES)}",
        "max_duration: 10m",
        "targets:",
    ]
    targets = [name("t", i) for i in range(budget.MAX_TARGETS)]
    lines += [f"  {t}: {{command: {{}}}}" for t in targets]
    lines.append("hypothesis:")
    probes = [name("p", i) for i in range(budget.MAX_PROBES)]
    headers = {f"h{i}": "v" * 64 for i in range(budget.MAX_MAPPING_KEYS)}
    for i, probe in enumerate(probes):
        if i == 0:
            lines.append(
                f"  - {{name: {probe}, http: {{url: 'http://127.0.0.1:{port}/', headers: {json.dumps(headers)}}}}}"
            )
        else:
            lines.append(f"  - {{name: {probe}, tcp: {{port: {port}}}}}")
    lines.append("faults:")
    for i in range(faults):
        run_text = f"&run {json.dumps(run)}" if i == 0 else "*run"
        revert_text = f"&revert {json.dumps(revert)}" if i == 0 else "*revert"
        lines.append(
            f"  - {{name: {name('f', i)}, target: {targets[i % len(targets)]}, action: run, "
            f"run: {run_text}, revert: {revert_text}}}"
        )
    lines += ["observe:", "  duration: 2s", "  interval: 1s", "  guardrails:"]
    for i in range(budget.MAX_GUARDRAILS):
        lines.append(f"    - {{name: {name('g', i)}, probe: {probes[i]}, failing: 100}}")
    lines += ["recovery: {within: 60s}"]
    return "\n".join(lines) + "\n"


def test_the_limit_drill_is_valid_and_uses_the_limits() -> None:
    drill = parse_drill(limit_drill(8080))

    assert len(drill.faults) == budget.MAX_FAULTS
    assert len(drill.hypothesis) == budget.MAX_PROBES
    assert len(drill.targets) == budget.MAX_TARGETS
    assert len(drill.observe.guardrails) == budget.MAX_GUARDRAILS
    assert {len(f.run.encode()) for f in drill.faults if f.action == "run"} == {budget.MAX_COMMAND_BYTES}  # type: ignore[union-attr]


async def run_drill(client: Client, store: Store, text: str) -> tuple[object, int, int]:
    drill = parse_drill(text)
    run_id = f"drill-{drill.name}-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, store) as queue:
        handle = await client.start_workflow(
            DrillWorkflow.run,
            DrillInput(run_id=run_id, drill=drill, source="test", started_by="pytest"),
            id=run_id,
            task_queue=queue,
        )
        record = await finish(handle, "payload_budget", within=300)
        history = await handle.fetch_history()
    biggest = max(event.ByteSize() for event in history.events)
    return record, biggest, sum(event.ByteSize() for event in history.events)


async def test_a_drill_at_every_limit_runs_to_resilient_with_every_event_far_under_two_megabytes(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    record, biggest, total = await run_drill(client, store, limit_drill(service.port))

    assert record.verdict == Verdict.RESILIENT, record.summary  # type: ignore[attr-defined]
    faults = record.faults  # type: ignore[attr-defined]
    assert len(faults) == budget.MAX_FAULTS and all(f.state == FaultState.REVERTED for f in faults)
    assert all(len(f.output.encode()) <= budget.MAX_OUTPUT_BYTES for f in faults)
    assert biggest < BIG_EVENT, f"largest history event {biggest} bytes"
    print(f"\nlimit drill: largest event {biggest / KIB:.0f} KiB, history {total / KIB:.0f} KiB")
    saved = store.get(record.run_id)  # type: ignore[attr-defined]
    assert saved is not None and saved.verdict == Verdict.RESILIENT


async def test_a_fault_printing_five_megabytes_and_failing_keeps_its_record_small_and_the_run_completes(
    client: Client, tmp_path: Path
) -> None:
    five_mb = 5 * 1024 * 1024
    run = padded(f"yes aaaaaaaaaaaaaaa | head -c {five_mb}; exit 3", budget.MAX_COMMAND_BYTES)
    text = f"""
name: loud-fault
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "yes bbbbbbbbbbbb | head -c {five_mb}", revert: "yes c | head -c {five_mb}"}}
  - {{target: sh, action: run, run: {json.dumps(run)}, revert: "true"}}
observe: {{duration: 1s}}
"""
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    record, biggest, _ = await run_drill(client, store, text)

    loud, failing = record.faults  # type: ignore[attr-defined]
    assert record.verdict == Verdict.ERROR, record.summary  # type: ignore[attr-defined]
    assert loud.state == FaultState.REVERTED and failing.state == FaultState.FAILED
    assert len(loud.output.encode()) <= budget.MAX_OUTPUT_BYTES
    assert len(failing.error.encode()) <= budget.MAX_OUTPUT_BYTES and "[truncated" in failing.error
    assert "a" * 15 in failing.error[-100:], "the tail of the output is kept"
    assert failing.error.startswith("run sh: `yes"), "and its head"
    assert len(record.model_dump_json()) < 64 * KIB  # type: ignore[attr-defined]
    assert biggest < 128 * KIB


# --- the cut itself, without a server ------------------------------------------------------------------------


def test_clip_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    text = "head " + "m" * 10_000 + " tail"

    cut = budget.clip(text, 1000)

    assert budget.payload_bytes(cut) <= 1000
    assert cut.startswith("head m") and cut.endswith("m tail")
    assert "…[truncated " in cut and " bytes]…" in cut
    assert budget.clip("short", 1000) == "short"


def test_clip_counts_what_json_escapes_so_nul_output_stays_within_its_bytes() -> None:
    cut = budget.clip("\x00" * 4096, budget.MAX_OUTPUT_BYTES)

    assert budget.payload_bytes(cut) <= budget.MAX_OUTPUT_BYTES


def test_signal_texts_are_cut_on_arrival_whatever_a_client_sends() -> None:
    from gameday.model.records import Approve, StopRequest

    stop = StopRequest.model_validate({"reason": "r" * 2_000_000, "by": "b" * 10_000})
    note = Approve.model_validate_json(json.dumps({"by": "me", "note": "n" * 2_000_000}))

    assert budget.payload_bytes(stop.reason) <= budget.MAX_REASON_BYTES
    assert budget.payload_bytes(stop.by) <= budget.MAX_BY_BYTES
    assert budget.payload_bytes(note.note) <= budget.MAX_REASON_BYTES and note.by == "me"


def test_a_fault_record_leaving_its_activity_has_its_output_and_error_cut() -> None:
    from gameday.activities.faults.activities import bounded
    from gameday.model.records import FaultRecord

    record = FaultRecord(
        index=0, label="f", target="t", kind="command", action="run", output="o" * 100_000, error="e" * 100_000
    )
    record = record.model_copy(update={"changed": {"revert": "r" * 8000}})

    out = bounded(record)

    assert len(out.output) <= budget.MAX_OUTPUT_BYTES and len(out.error) <= budget.MAX_OUTPUT_BYTES
    assert out.changed == record.changed, "the revert needs all of changed: it is never cut"


def test_max_duration_is_refused_past_24_hours_located_and_accepted_at_24() -> None:
    from gameday.model.loader import DrillFileError

    drill = (
        "name: long\nmax_duration: {}\ntargets: {{t: {{command: {{}}}}}}\n"
        "faults: [{{target: t, action: run, run: 'true', revert: 'true'}}]\n"
    )
    assert parse_drill(drill.format("24h")).max_duration == budget.MAX_DURATION
    with pytest.raises(DrillFileError) as caught:
        parse_drill(drill.format("24h1s"), file="drills/long.yaml")
    assert str(caught.value).splitlines()[0] == (
        "drills/long.yaml:2:15: max_duration: expected at most 24h (see Limits in docs/DRILL_FORMAT.md)"
    )
