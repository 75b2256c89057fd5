"""A Slack outage never holds the verdict, and is told once: ``gameday run --wait`` against a ``gameday worker``
process whose Slack (the fake Slack on loopback) is down for the whole drill."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import Phase, StepStatus, Verdict
from tests.cli.test_cli_commands import last_json_line
from tests.fakes.slack import FakeSlack
from tests.harness import wait_until, worker_process

pytestmark = pytest.mark.integration

TOKEN = "xoxb-slack-outage-test"
DRILL = """
name: slack-outage
notify: {slack: {channel: "#gameday"}, give_up_after: 30s}
targets:
  sh: {command: {}}
hypothesis:
  - name: probe
    command: {run: "true"}
faults:
  - {target: sh, action: run, run: "true", revert: "true"}
observe: {duration: 1s, interval: 100ms}
recovery: {within: 10s, interval: 100ms}
"""


@pytest.fixture
def slack_down() -> str:
    """The Web API URL of a Slack that answers nothing (started, then stopped: an outage)."""

    async def down() -> str:
        slack = await FakeSlack(token=TOKEN).start()
        await slack.stop()
        return slack.api_url

    return asyncio.run(down())


@pytest.fixture
def env(temporal_address: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GAMEDAY_TEMPORAL_ADDRESS": temporal_address,
        "GAMEDAY_TASK_QUEUE": f"test-slack-outage-{uuid.uuid4()}",
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }


@pytest.fixture
def worker_log(env: dict[str, str], slack_down: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GAMEDAY_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("GAMEDAY_SLACK_API_URL", slack_down)
    log = tmp_path / "worker.log"
    address, queue, database = env["GAMEDAY_TEMPORAL_ADDRESS"], env["GAMEDAY_TASK_QUEUE"], env["GAMEDAY_DATABASE_URL"]
    worker = worker_process(address, queue, database, log)
    try:
        wait_until(lambda: "worker polling task queue" in log.read_text(), what="the worker to poll", timeout=60)
        yield log
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_a_slack_outage_never_holds_the_verdict_and_is_recorded_in_one_line_with_a_count(
    env: dict[str, str], worker_log: Path, tmp_path: Path
) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text(DRILL)

    result = CliRunner().invoke(app, ["run", str(drill), "--wait", "--json"], env=env)

    assert result.exit_code == 0, result.output
    contract = last_json_line(result.stdout)
    run_id = str(contract["run_id"])
    assert contract["verdict"] == "RESILIENT"
    assert "notifications are still being sent" in result.output
    # The verdict came first: Slack is still being retried, and the run says so.
    status = CliRunner().invoke(app, ["status", run_id], env=env)
    assert f"{run_id}  phase: notify" in status.stdout, status.output

    store = Store(env["GAMEDAY_DATABASE_URL"])

    def recorded() -> bool:
        record = store.get(run_id)
        return record is not None and any(step.phase == Phase.RECORD for step in record.steps)

    wait_until(recorded, what="the run's final record, once the notifications are given up", timeout=90)
    record = store.get(run_id)
    assert record is not None and record.verdict == Verdict.RESILIENT
    [notify] = [step for step in record.steps if step.phase == Phase.NOTIFY]
    assert notify.status == StepStatus.FAILED
    assert notify.detail == (
        "notify_slack: 7 notification(s) not delivered (started, phase (5), finished): "
        "Slack chat.postMessage unreachable: ClientConnectorError"
    )
    log = worker_log.read_text()
    assert log.count("not delivered") == 1, log  # the outage is logged once, not once per event or attempt
    assert "Traceback" not in log and TOKEN not in log
