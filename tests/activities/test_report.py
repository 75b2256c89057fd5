"""The drill log: what a person reads in Markdown, and the JSON that reads back into the same record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gameday.model.records import (
    FaultRecord,
    FaultState,
    Phase,
    ProbeResult,
    RunRecord,
    StepRecord,
    StepStatus,
    StopRequest,
    Verdict,
)
from gameday.report.run import read_json, render_json, render_markdown, render_traffic_live
from tests.activities.test_store_traffic import END, make_traffic
from tests.harness import reverted_fault, step

T0 = datetime(2024, 5, 7, 14, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def aborted_run() -> RunRecord:
    """A drill stopped by hand during observation, after two faults were applied."""
    return RunRecord(
        run_id="checkout-db-outage-20240507",
        drill_name="checkout-db-outage",
        team="payments",
        source="drills/checkout.yaml",
        started_by="alice",
        phase=Phase.DONE,
        verdict=Verdict.ABORTED,
        started_at=T0,
        ended_at=at(95),
        steps=[
            step(T0, Phase.PREFLIGHT, 0, 2.5),
            step(T0, Phase.INJECT, 2.5, 3),
            step(T0, Phase.OBSERVE, 3, 63, "stopped by bob | guardrails quiet", StepStatus.INTERRUPTED),
            step(T0, Phase.ROLLBACK, 63, 63.2),
            step(T0, Phase.VERIFY, 63.2, 95),
        ],
        faults=[
            reverted_fault(
                T0, 0, "db pause", "db", "docker", "pause", applied=2.6, reverted=63.1, changed={"container": "shop-db"}
            ),
            FaultRecord(
                index=1,
                label="db-link latency",
                target="db-link",
                kind="proxy",
                action="latency",
                state=FaultState.NOT_REVERTED,
                applied_at=at(2.8),
                changed={"toxic": "latency_downstream"},
                error="proxy unreachable",
            ),
        ],
        probes=[
            ProbeResult(
                probe="api fast",
                phase=Phase.PREFLIGHT,
                kind="http",
                samples=20,
                failures=0,
                ok=True,
                latency_p50=0.0123,
                latency_p95=0.2504,
                latency_max=0.31,
                at=at(2.4),
            ),
            ProbeResult(
                probe="api fast",
                phase=Phase.OBSERVE,
                kind="http",
                samples=600,
                failures=90,
                ok=False,
                latency_p50=0.4,
                latency_p95=1.2,
                latency_max=3.0,
                at=at(63),
                problems=["error rate 15% > 1%", "p95 1200ms > 800ms"],
            ),
        ],
        stop=StopRequest(reason="db team asked to stop", by="bob", received_at=at(62.9)),
        time_to_recovery=31.8,
        summary="Stopped by bob during observe; every fault but one reverted.",
    )


def test_markdown_names_the_drill_its_verdict_each_phase_each_fault_and_the_stop_reason() -> None:
    markdown = render_markdown(aborted_run())

    title = markdown.splitlines()[0]
    assert "checkout-db-outage" in title
    assert "ABORTED" in title
    for phase in ("preflight", "inject", "observe", "rollback", "verify"):
        assert f"| {phase} |" in markdown
    assert "db pause" in markdown
    assert "db-link latency" in markdown
    assert "db team asked to stop" in markdown
    assert "bob" in markdown
    assert "Stopped by bob during observe" in markdown


def test_markdown_shows_who_when_duration_and_time_to_recovery() -> None:
    markdown = render_markdown(aborted_run())

    assert "alice" in markdown
    assert "2024-05-07 14:00:00 UTC" in markdown
    assert "1 min 35 s" in markdown  # the whole run
    assert "31.8 s" in markdown  # time to recovery


def test_markdown_shows_fault_times_and_what_changed() -> None:
    markdown = render_markdown(aborted_run())

    assert "14:00:02 (+2.6 s)" in markdown  # db pause applied
    assert "14:01:03 (+1 min 03 s)" in markdown  # db pause reverted
    assert "container=shop-db" in markdown
    assert "not_reverted" in markdown
    assert "proxy unreachable" in markdown


def test_markdown_warns_before_anything_else_about_a_fault_left_in_place() -> None:
    lines = render_markdown(aborted_run()).splitlines()

    warning = next(i for i, line in enumerate(lines) if "not reverted" in line)
    assert "`db-link latency`" in lines[warning]
    assert "`db pause`" not in lines[warning]
    assert warning < next(i for i, line in enumerate(lines) if line.startswith("- **Run:**"))


def test_markdown_shows_probe_latencies_in_milliseconds_and_problems_per_phase() -> None:
    markdown = render_markdown(aborted_run())

    assert "### preflight" in markdown
    assert "### observe" in markdown
    assert "| api fast | http | yes | 20 | 0 | 12.3 | 250.4 | 310.0 |" in markdown
    assert "| 600 | 90 | 400.0 | 1200.0 | 3000.0 | error rate 15% > 1%; p95 1200ms > 800ms |" in markdown


def test_markdown_links_the_web_ui_only_when_given() -> None:
    url = "http://127.0.0.1:8233/namespaces/default/workflows/checkout-db-outage-20240507"

    assert f"[{url}]({url})" in render_markdown(aborted_run(), ui_url=url)
    assert "Web UI" not in render_markdown(aborted_run())


def test_markdown_of_a_run_still_in_progress_says_so() -> None:
    record = RunRecord(
        run_id="r",
        drill_name="cache-loss",
        phase=Phase.OBSERVE,
        started_at=T0,
        steps=[StepRecord(phase=Phase.OBSERVE, status=StepStatus.OK, started_at=T0)],
    )

    markdown = render_markdown(record)

    assert "in progress (observe)" in markdown.splitlines()[0]
    assert "| observe | ok | running |" in markdown
    assert "## Faults" not in markdown


def test_markdown_escapes_pipes_so_a_detail_cannot_break_the_table() -> None:
    assert "| observe | interrupted | 1 min 00 s | stopped by bob \\| guardrails quiet |" in render_markdown(
        aborted_run()
    )


def test_json_parses_back_into_an_equal_record() -> None:
    record = aborted_run()

    assert read_json(render_json(record)) == record


# --- traffic -------------------------------------------------------------------------------------------------


def run_with_traffic(until: int = END) -> RunRecord:
    return aborted_run().model_copy(update={"traffic": make_traffic(until=until)})


def test_markdown_shows_one_traffic_row_per_window_in_order_with_the_total_last() -> None:
    lines = render_markdown(run_with_traffic()).splitlines()

    start = lines.index("## Traffic")
    end = lines.index("## Probes")
    rows = [line for line in lines[start:end] if line.startswith("| ") and not line.startswith("| Window")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| before",
        "| during pause db",
        "| rollback",
        "| after",
        "| **total**",
    ]
    # The traffic started 3 s into the run: windows are shown from the run's start, like the faults.
    assert rows[1] == (
        "| during pause db | +8.0 s | +15.0 s | 50 | 7.1 | 30.00% | 70.00% | 24.0 | 2000.9 | 2000.9 | 2000.9 | 0.00% |"
    )
    assert rows[4].startswith("| **total** | +3.0 s | +23.0 s | 180 | 9.0 | 8.33% | 91.67% |")


def test_markdown_traffic_names_the_error_classes_the_worst_seconds_and_the_gap() -> None:
    markdown = render_markdown(run_with_traffic())

    assert "10 requests/s sent from 2024-05-07 14:00:03 UTC (+3.0 s) for 20.0 s" in markdown
    assert "- Errors in total: 5xx: 10, timeouts: 5." in markdown
    assert "- Worst second for errors: +8.0 s, 3 of 10 failed." in markdown
    assert "- Slowest second: +8.0 s, p95 2000.9 ms." in markdown
    assert "- **Gap:** nothing was sent from +11.0 s to +13.0 s" in markdown
    assert "still running" not in markdown


def test_markdown_of_traffic_still_running_says_so_and_leaves_the_window_open() -> None:
    markdown = render_markdown(run_with_traffic(until=11))

    assert "Measured so far: the traffic was still running" in markdown
    assert "| during pause db | +8.0 s | open | 40 | - |" in markdown


def test_markdown_counts_the_requests_still_in_flight_apart() -> None:
    record = run_with_traffic(until=11)
    assert record.traffic is not None
    total = record.traffic.total.model_copy(update={"sent": record.traffic.total.sent + 7})
    record = record.model_copy(update={"traffic": record.traffic.model_copy(update={"total": total})})

    assert "- 7 requests had no outcome yet when the figures were taken (in flight)." in render_markdown(record)


def test_markdown_warns_when_too_many_requests_left_late() -> None:
    record = run_with_traffic()
    assert record.traffic is not None
    total = record.traffic.total.model_copy(update={"late": 9})
    record = record.model_copy(update={"traffic": record.traffic.model_copy(update={"total": total})})

    assert "**5.00% of requests left late**" in render_markdown(record)
    assert "left late" not in render_markdown(run_with_traffic())  # 0.56%: below the 1% that matters


def test_markdown_has_no_traffic_section_without_traffic() -> None:
    assert "## Traffic" not in render_markdown(aborted_run())


def test_json_with_traffic_parses_back_into_an_equal_record() -> None:
    record = run_with_traffic()

    assert read_json(render_json(record)) == record


def test_live_traffic_shows_the_last_seconds_and_the_current_window() -> None:
    lines = render_traffic_live(make_traffic(until=11), seconds=3)

    assert lines[0] == "traffic: 10/s, running, 11.2 s measured"
    assert lines[1].split() == ["second", "sent", "ok", "errors", "p95", "ms"]
    assert [line.split() for line in lines[2:5]] == [
        ["+5s", "10", "7", "3", "2000.9"],
        ["+6s", "10", "7", "3", "2000.9"],
        ["+7s", "10", "7", "3", "2000.9"],
    ]
    assert lines[5].startswith('  window "during pause db" (since +5.0s): 40 sent, 28 ok, 12 errors (30.00%)')
    assert lines[6].startswith("  total: 90 sent, 78 ok, 12 errors (13.33%), p50/p95/p99/max ")
    assert lines[7] == "  gap: nothing sent from +8.0s to +10.0s (the sending worker was lost)"


def test_live_traffic_before_the_first_second_closes_shows_the_window_only() -> None:
    traffic = make_traffic(until=1)

    lines = render_traffic_live(traffic)

    assert lines[0] == "traffic: 10/s, running, 1.2 s measured"
    assert len(lines) == 2  # no closed second yet, one window: no separate total
    assert lines[1].startswith('  window "before" (since +0.0s): 10 sent, 10 ok, 0 errors (0.00%)')
