"""The ``gameday`` commands against real parts: the session dev server, a ``gameday worker`` process, SQLite,
and shell commands as fault targets and probes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from gameday.model.records import Verdict
from gameday.worker.devserver import free_port
from tests.cli.conftest import UI_URL, Gameday
from tests.harness import wait_until

pytestmark = pytest.mark.integration

DRILLS = Path(__file__).parent.parent / "drills"


def command_drill(name: str, marker: Path, *, probe: str, observe: str = "500ms") -> str:
    """A drill whose fault creates ``marker`` (reverted by deleting it), with one command probe."""
    return f"""
name: {name}
team: cli-tests
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: probe
    command: {{run: "{probe}"}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: {observe}, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def last_json_line(stdout: str) -> dict[str, object]:
    payload = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(payload, dict)
    return payload


@dataclass
class Finished:
    """A drill run to its end with ``gameday run FILE --wait --json``."""

    exit_code: int
    contract: dict[str, object]
    output: str

    @property
    def run_id(self) -> str:
        return str(self.contract["run_id"])


def run_and_wait(gameday: Gameday, drill: Path, *extra: str) -> Finished:
    result = gameday("run", str(drill), "--wait", "--json", *extra)
    assert result.stdout.strip(), result.output
    return Finished(result.exit_code, last_json_line(result.stdout), result.output)


@pytest.fixture(scope="module")
def resilient(gameday: Gameday) -> Finished:
    """A drill whose fault does not disturb its probe: RESILIENT."""
    marker = gameday.workdir / "resilient-marker"
    return run_and_wait(gameday, gameday.drill(command_drill(unique("cli-resilient"), marker, probe="true")))


@pytest.fixture(scope="module")
def deviated(gameday: Gameday) -> Finished:
    """A drill whose probe fails while the fault is held and passes again after its revert: DEVIATED."""
    marker = gameday.workdir / "deviated-marker"
    drill = command_drill(unique("cli-deviated"), marker, probe=f"test ! -e {marker}")
    return run_and_wait(gameday, gameday.drill(drill))


# --- validate -------------------------------------------------------------------------------------------


def test_validate_accepts_a_good_drill_and_exits_0(gameday: Gameday) -> None:
    result = gameday("validate", str(DRILLS / "good" / "minimal.yaml"))
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "minimal" in result.stdout


def test_validate_reports_each_problem_as_file_line_col_path_message_and_exits_1(gameday: Gameday) -> None:
    bad = gameday.workdir / "bad.yaml"
    bad.write_text("name: two-problems\ntema: payments\nobserve: {duration: 5 minutes}\n")
    result = gameday("validate", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:2:1: tema: unknown key 'tema'" in result.stderr
    assert f"{bad}:3:21: observe.duration: expected a duration" in result.stderr
    assert "2 problem(s)" in result.stderr
    assert "Traceback" not in result.output


def test_validate_prints_problems_that_look_like_markup_verbatim(gameday: Gameday) -> None:
    bad = gameday.workdir / "markup.yaml"
    bad.write_text('name: ok\n"[/oops]": 1\n"[bold]": 2\n')
    result = gameday("validate", str(bad))
    assert result.exit_code == 1, result.output
    assert "unknown key '[/oops]'" in result.stderr
    assert "unknown key '[bold]'" in result.stderr


def test_validate_of_a_missing_file_exits_1_with_one_line(gameday: Gameday) -> None:
    result = gameday("validate", str(gameday.workdir / "no-such-drill.yaml"))
    assert result.exit_code == 1
    assert "no-such-drill.yaml" in result.stderr
    assert "Traceback" not in result.output


# --- run ------------------------------------------------------------------------------------------------


def test_run_wait_json_prints_the_contract_as_the_last_line_and_exits_0_when_resilient(
    resilient: Finished,
) -> None:
    assert resilient.exit_code == 0, resilient.output
    contract = resilient.contract
    assert contract["verdict"] == "RESILIENT"
    assert resilient.run_id.startswith("drill-cli-resilient-")
    assert isinstance(contract["started_at"], str) and isinstance(contract["ended_at"], str)
    assert contract["started_at"] < contract["ended_at"]
    assert contract["ui_url"] == f"{UI_URL}/namespaces/default/workflows/{resilient.run_id}"


def test_run_wait_follows_the_phases_on_stderr_when_printing_json(resilient: Finished) -> None:
    for phase in ("preflight", "inject", "observe", "rollback", "verify"):
        assert phase in resilient.output
    assert "RESILIENT" in resilient.output


def test_run_wait_exits_2_when_a_probe_breaks_under_fault(deviated: Finished, gameday: Gameday) -> None:
    assert deviated.exit_code == 2, deviated.output
    assert deviated.contract["verdict"] == "DEVIATED"
    assert not (gameday.workdir / "deviated-marker").exists()


def test_run_without_wait_returns_at_once_with_a_null_verdict_and_the_run_then_finishes(gameday: Gameday) -> None:
    marker = gameday.workdir / "nowait-marker"
    drill = gameday.drill(command_drill(unique("cli-nowait"), marker, probe="true", observe="1s"))
    result = gameday("run", str(drill), "--json")
    assert result.exit_code == 0, result.output
    contract = last_json_line(result.stdout)
    assert contract["verdict"] is None
    assert contract["ended_at"] is None
    run_id = str(contract["run_id"])
    assert gameday.recorded(run_id).verdict == Verdict.RESILIENT
    assert not marker.exists()


def test_run_with_id_uses_that_id(gameday: Gameday) -> None:
    run_id = unique("my-id")
    drill = gameday.drill(command_drill(unique("cli-with-id"), gameday.workdir / "id-marker", probe="true"))
    result = gameday("run", str(drill), "--id", run_id, "--wait", "--json")
    assert result.exit_code == 0, result.output
    assert last_json_line(result.stdout)["run_id"] == run_id
    assert gameday.recorded(run_id).run_id == run_id


def test_run_with_an_id_already_used_exits_1_saying_so(gameday: Gameday, resilient: Finished) -> None:
    drill = gameday.drill(command_drill(unique("cli-dup-id"), gameday.workdir / "dup-marker", probe="true"))
    result = gameday("run", str(drill), "--id", resilient.run_id)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert resilient.run_id in lines[0] and "already" in lines[0]


def test_run_of_an_invalid_drill_starts_nothing_and_exits_1(gameday: Gameday) -> None:
    result = gameday("run", str(DRILLS / "bad" / "unknown_target.yaml"), "--wait")
    assert result.exit_code == 1
    assert "unknown_target.yaml:6:14: faults[0].target" in result.stderr
    assert "nothing was started" in result.stderr


def test_run_without_a_temporal_server_exits_1_with_one_line(gameday: Gameday) -> None:
    drill = gameday.drill(command_drill(unique("cli-no-server"), gameday.workdir / "x", probe="true"))
    address = f"127.0.0.1:{free_port()}"
    result = gameday("run", str(drill), "--wait", GAMEDAY_TEMPORAL_ADDRESS=address)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach Temporal" in lines[0] and address in lines[0]
    assert "Traceback" not in result.output


# --- stop, status, report, list -------------------------------------------------------------------------


def test_stop_during_observation_reverts_every_fault_and_the_run_is_reported_aborted_with_the_reason(
    gameday: Gameday,
) -> None:
    marker = gameday.workdir / "stop-marker"
    drill = gameday.drill(command_drill(unique("cli-stop"), marker, probe="true", observe="5m"))
    started = gameday("run", str(drill), "--json")
    assert started.exit_code == 0, started.output
    run_id = str(last_json_line(started.stdout)["run_id"])
    wait_until(marker.exists, what="the fault to be applied")
    # The fault lands before the phase moves on (a progress write sits between inject and observe).
    wait_until(lambda: "phase: observe" in gameday("status", run_id).stdout, what="the observe phase")

    live = gameday("status", run_id)
    assert live.exit_code == 0, live.output
    assert "phase: observe" in live.stdout
    assert "faults active: run sh" in live.stdout

    stopped = gameday("stop", run_id, "--reason", "[inc-42] pager fired", "--by", "alice", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert f"stop sent to {run_id}: [inc-42] pager fired" in stopped.stdout
    assert "every fault reverted" in stopped.stdout
    assert "time to safe: " in stopped.stdout and "after the stop" in stopped.stdout
    assert not marker.exists()

    gameday.recorded(run_id)
    report = gameday("report", run_id, "--format", "json")
    assert report.exit_code == 0, report.output
    record = json.loads(report.stdout)
    assert record["verdict"] == "ABORTED"
    assert record["stop"]["reason"] == "[inc-42] pager fired" and record["stop"]["by"] == "alice"
    assert record["time_to_safe"] is not None and record["time_to_safe"] >= 0
    assert record["time_to_healthy"] is not None and record["time_to_healthy"] >= record["time_to_safe"]

    finished = gameday("status", run_id)
    assert finished.exit_code == 0, finished.output
    assert f"{run_id}  phase: " in finished.stdout
    assert "verdict: ABORTED" in finished.stdout
    assert "time to safe: " in finished.stdout
    assert "reverted    run sh" in finished.stdout


def test_stop_of_a_finished_run_exits_1_saying_it_already_finished(gameday: Gameday, resilient: Finished) -> None:
    result = gameday("stop", resilient.run_id, "--reason", "too late")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert resilient.run_id in lines[0] and "already finished" in lines[0]


def test_stop_of_an_unknown_run_exits_1_with_one_line_naming_it(gameday: Gameday) -> None:
    run_id = unique("drill-nobody")
    result = gameday("stop", run_id, "--reason", "test")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert run_id in lines[0]


def test_status_of_an_unknown_run_exits_1_naming_it(gameday: Gameday) -> None:
    run_id = unique("drill-nobody")
    result = gameday("status", run_id)
    assert result.exit_code == 1
    assert run_id in result.stderr


def test_report_is_markdown_by_default_and_the_full_record_as_json(gameday: Gameday, deviated: Finished) -> None:
    markdown = gameday("report", deviated.run_id)
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# Drill `cli-deviated-")
    assert "DEVIATED" in markdown.stdout
    assert f"{UI_URL}/namespaces/default/workflows/{deviated.run_id}" in markdown.stdout
    as_json = gameday("report", deviated.run_id, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    record = json.loads(as_json.stdout)
    assert record["run_id"] == deviated.run_id and record["verdict"] == "DEVIATED"


def test_report_of_an_unknown_run_exits_1(gameday: Gameday) -> None:
    run_id = unique("drill-nobody")
    result = gameday("report", run_id)
    assert result.exit_code == 1
    assert run_id in result.stderr


def test_report_in_an_unknown_format_exits_1(gameday: Gameday, resilient: Finished) -> None:
    result = gameday("report", resilient.run_id, "--format", "pdf")
    assert result.exit_code == 1
    assert "pdf" in result.stderr


def test_list_shows_recorded_run_ids(gameday: Gameday, resilient: Finished, deviated: Finished) -> None:
    result = gameday("list")
    assert result.exit_code == 0, result.output
    assert resilient.run_id in result.stdout
    assert deviated.run_id in result.stdout


def test_list_filters_by_verdict(gameday: Gameday, resilient: Finished, deviated: Finished) -> None:
    result = gameday("list", "--verdict", "resilient")
    assert result.exit_code == 0, result.output
    assert resilient.run_id in result.stdout
    assert deviated.run_id not in result.stdout


def test_list_of_an_empty_database_says_so(gameday: Gameday) -> None:
    empty = f"sqlite:///{gameday.workdir / 'empty.db'}"
    result = gameday("list", GAMEDAY_DATABASE_URL=empty)
    assert result.exit_code == 0, result.output
    assert "no runs recorded yet" in result.stdout


# --- help -----------------------------------------------------------------------------------------------


def test_app_help_names_every_configuration_variable(gameday: Gameday) -> None:
    result = gameday("--help")
    assert result.exit_code == 0, result.output
    for variable in (
        "GAMEDAY_TEMPORAL_ADDRESS",
        "GAMEDAY_NAMESPACE",
        "GAMEDAY_TASK_QUEUE",
        "GAMEDAY_DATA_DIR",
        "GAMEDAY_DATABASE_URL",
    ):
        assert variable in result.stdout
    assert "127.0.0.1:7233" in result.stdout


def test_run_help_lists_the_exit_code_of_every_verdict(gameday: Gameday) -> None:
    result = gameday("run", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for code, verdict in ((0, "RESILIENT"), (2, "DEVIATED"), (3, "NOT_STEADY"), (4, "ABORTED")):
        assert f"{code} {verdict}" in text
    for code, verdict in ((5, "NOT_RECOVERED"), (6, "ERROR")):
        assert f"{code} {verdict}" in text


def test_dry_run_prints_every_fault_with_its_revert_and_touches_nothing(gameday: Gameday) -> None:
    marker = gameday.workdir / "dry-run-marker"
    drill = gameday.drill(command_drill(unique("cli-dry"), marker, probe="true"))
    closed = f"127.0.0.1:{free_port()}"  # no Temporal needed: a dry run connects to nothing
    result = gameday("--address", closed, "run", str(drill), "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"run `touch {marker}`" in result.stdout
    assert f"revert: run `rm -f {marker}`" in result.stdout
    assert "max_duration 15m" in result.stdout and "dry run: nothing was started" in result.stdout
    assert not marker.exists()


def test_stop_all_for_a_team_stops_that_teams_drills_only(gameday: Gameday) -> None:
    team = unique("team")
    markers = [gameday.workdir / unique("all-marker") for _ in range(3)]
    run_ids = []
    for n, marker in enumerate(markers):
        text = command_drill(unique("cli-all"), marker, probe="true", observe="5m")
        text = text.replace("team: cli-tests", f"team: {team if n < 2 else 'other-' + team}")
        started = gameday("run", str(gameday.drill(text)), "--json")
        assert started.exit_code == 0, started.output
        run_ids.append(str(last_json_line(started.stdout)["run_id"]))
    for marker in markers:
        wait_until(marker.exists, what="every fault to be applied")
    wait_until(lambda: all(r in gameday("list").stdout for r in run_ids), what="the runs to be recorded")

    def both_visible() -> bool:
        listing = gameday("stop", "--all", "--team", "nobody-" + team, "--reason", "probe visibility")
        return listing.exit_code == 0 and "no running drills" in listing.stdout

    wait_until(both_visible, what="visibility to answer")
    stopped = gameday("stop", "--all", "--team", team, "--reason", "game over", "--wait")
    assert stopped.exit_code == 0, stopped.output
    assert all(f"stop sent to {r}" in stopped.stdout for r in run_ids[:2])
    assert run_ids[2] not in stopped.stdout
    assert not markers[0].exists() and not markers[1].exists()
    assert markers[2].exists()
    assert gameday.recorded(run_ids[0]).verdict == Verdict.ABORTED
    other = gameday("stop", run_ids[2], "--reason", "cleanup", "--wait")
    assert other.exit_code == 0, other.output
    assert not markers[2].exists()


def test_list_temporal_finds_runs_by_team_and_verdict_through_search_attributes(
    gameday: Gameday, resilient: Finished
) -> None:
    def listed() -> bool:
        result = gameday("list", "--temporal", "--team", "cli-tests", "--verdict", "RESILIENT")
        return result.exit_code == 0 and resilient.run_id in result.stdout

    wait_until(listed, what="visibility to show the run with its verdict")
    line = next(
        ln for ln in gameday("list", "--temporal", "--team", "cli-tests").stdout.splitlines() if resilient.run_id in ln
    )
    assert "cli-tests" in line and "RESILIENT" in line and "COMPLETED" in line
    none = gameday("list", "--temporal", "--team", "cli-tests", "--verdict", "NOT_STEADY", "--drill", "no-such-drill")
    assert none.exit_code == 0 and "no drills or game days in Temporal match" in none.stdout
