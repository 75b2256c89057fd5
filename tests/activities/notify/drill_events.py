"""Events of one drill, ``checkout-db-outage``, as DrillWorkflow will send them; and the test bot token."""

from __future__ import annotations

from datetime import UTC, datetime

from gameday.model.notify_records import (
    DrillFinished,
    DrillStarted,
    DrillStopped,
    Notify,
    NotifyEvent,
    NotifyWhat,
    PhaseDone,
    SlackNotify,
    SlackThread,
)

TOKEN = "xoxb-gameday-test-7c1f0e5d9a"
"""The bot token the fake Slack accepts; tests assert it shows up nowhere but the Authorization header."""
RUN_ID = "drill-checkout-db-outage-20250101T140000Z"

STARTED = DrillStarted(
    description="Checkout keeps serving from cache while its database stalls.",
    started_by="alice",
    targets=["db: docker shop-db", "db-link: proxy 127.0.0.1:15432"],
    faults=["db pause", "db-link latency 250ms"],
)
PHASES = [
    PhaseDone(phase="preflight", status="ok", seconds=1.2),
    PhaseDone(phase="inject", status="ok", seconds=0.3),
    PhaseDone(phase="observe", status="ok", seconds=120.0, detail="api fast: p95 410ms > 300ms"),
    PhaseDone(phase="rollback", status="ok", seconds=0.2),
    PhaseDone(phase="verify", status="ok", seconds=4.5),
]
DEVIATED = DrillFinished(
    verdict="DEVIATED",
    summary="api fast broke tolerance under fault; recovered in 4.5 s",
    time_to_recovery=4.5,
    faults_reverted=2,
    faults_total=2,
    report_url="https://reports.example/runs/1",
)
GUARDRAIL = DrillStopped(reason="error_rate 62% > 50% for 10s", by="guardrail")
ABORTED = DrillFinished(
    verdict="ABORTED",
    summary="stopped by guardrail: error_rate 62% > 50% for 10s",
    time_to_recovery=2.0,
    time_to_safe=0.31,
    faults_reverted=2,
    faults_total=2,
)


def event(what: NotifyWhat, thread: SlackThread | None = None, *, webhook: bool = False) -> NotifyEvent:
    """An event of the drill asking for ``#gameday`` (and the generic webhook when told)."""
    return NotifyEvent(
        run_id=RUN_ID,
        drill_name="checkout-db-outage",
        team="payments",
        at=datetime(2025, 1, 1, 14, 0, tzinfo=UTC),
        notify=Notify(slack=SlackNotify(channel="#gameday"), webhook=webhook),
        thread=thread,
        what=what,
    )
