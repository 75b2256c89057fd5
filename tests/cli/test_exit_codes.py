"""Every exit code README documents, each from a real run through the CLI: ``gameday run FILE --wait`` against the
session dev server and a ``gameday worker`` process, one drill per verdict; usage errors and files with problems
exit 1 (``tests/cli/test_help.py`` covers each kind of usage error)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.model.records import EXIT_CODES, Phase, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import last_json_line, unique
from tests.conftest import installed_binary
from tests.harness import WorkerProcesses, eventually, wait_phase

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"


def drill(name: str, workdir: Path, *, probe: str = "true", fault: str = "", extra: str = "") -> str:
    """A command drill: its fault touches a marker file (reverted by removing it) unless ``fault`` says otherwise."""
    marker = workdir / f"{name}.marker"
    fault = fault or '{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}'
    return f"""
name: {name}
team: exit-codes
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: probe
    command: {{run: "{probe.replace("{marker}", str(marker))}"}}
faults:
  - {fault.replace("{marker}", str(marker))}
observe: {{duration: 500ms, interval: 100ms{extra}}}
recovery: {{within: 2s, interval: 100ms}}
"""


KILL_SWITCH = ", guardrails: [{name: big red button, stop_when: {command: {run: 'true'}}}]"
"""A guardrail whose kill switch trips at the first tick: the drill stops itself, ABORTED."""
LEAVES_MARKER = '{target: sh, action: run, run: "touch {marker}", revert: "true"}'
"""A fault whose revert leaves its marker: a probe on the marker never passes again."""
APPLY_FAILS = '{target: sh, action: run, run: "exit 3", revert: "true"}'

# verdict → (probe, fault, observe extras): a drill that ends with that verdict.
DRILLS: dict[Verdict, tuple[str, str, str]] = {
    Verdict.RESILIENT: ("true", "", ""),
    Verdict.DEVIATED: ("test ! -e {marker}", "", ""),  # fails while the marker exists, passes once reverted
    Verdict.NOT_STEADY: ("false", "", ""),  # unhealthy before any fault
    Verdict.ABORTED: ("true", "", KILL_SWITCH),
    Verdict.NOT_RECOVERED: ("test ! -e {marker}", LEAVES_MARKER, ""),
    Verdict.ERROR: ("true", APPLY_FAILS, ""),
}


def documented_codes() -> dict[str, int]:
    """The verdict exit codes as README's contract paragraph writes them: `RESILIENT` 0, `DEVIATED` 2, …"""
    text = " ".join(README.read_text().split())
    return {name: int(code) for name, code in re.findall(r"`([A-Z_]+)` (\d)\b", text)}


def test_readme_documents_the_exit_code_of_every_verdict_as_the_cli_uses_it() -> None:
    assert documented_codes() == {verdict.value: code for verdict, code in EXIT_CODES.items()}
    assert set(EXIT_CODES.values()) == {0, 2, 3, 4, 5, 6, 7}  # 1 is left to usage errors


@pytest.mark.parametrize("verdict", list(DRILLS), ids=lambda v: v.value)
def test_run_wait_exits_with_the_documented_code_of_each_verdict(gameday: Gameday, verdict: Verdict) -> None:
    probe, fault, extra = DRILLS[verdict]
    name = unique(f"exit-{verdict.value.lower().replace('_', '-')}")
    text = drill(name, gameday.workdir, probe=probe, fault=fault, extra=extra)

    result = gameday("run", str(gameday.drill(text)), "--wait", "--json")

    assert last_json_line(result.stdout)["verdict"] == verdict.value, result.output
    assert result.exit_code == documented_codes()[verdict.value] == EXIT_CODES[verdict], result.output


def test_a_file_with_problems_exits_1(gameday: Gameday) -> None:
    bad = gameday.drill("name: x\ntargets:\n  api: {process: {pid: 1234}}\nfaults:\n  - {target: api, acton: pause}\n")

    result = gameday("run", str(bad), "--wait")

    assert result.exit_code == 1, result.output
    assert "unknown key 'acton' (did you mean 'action'?)" in result.stderr


async def test_run_wait_exits_7_inconclusive_when_the_worker_froze_through_the_observation(
    client: Client, tmp_path: Path
) -> None:
    """A real `gameday run --wait` process; its worker frozen (SIGSTOP) for most of the observation window."""
    address = client.service_client.config.target_host
    queue = f"exit-7-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    workers = WorkerProcesses(address, queue, database_url, tmp_path)
    worker = workers.start()
    file = tmp_path / "inconclusive.yaml"
    file.write_text(drill("exit-inconclusive", tmp_path).replace("duration: 500ms", "duration: 6s"))
    run_id = f"drill-exit-inconclusive-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": database_url,
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
    }
    try:
        run = await asyncio.create_subprocess_exec(
            installed_binary("gameday"),
            *("run", str(file), "--wait", "--id", run_id),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        handle = client.get_workflow_handle(run_id)
        await eventually(lambda: _exists(client, run_id), what="the run to start", within=30)
        await wait_phase(handle, Phase.OBSERVE, within=60)

        async def ticking() -> bool:
            # The window starts when the observe activity starts (a late start keeps its length): freeze the worker
            # only once it has ticked and heartbeated, so the freeze falls inside the window.
            pending = (await handle.describe()).raw_description.pending_activities
            return any(p.activity_type.name == "observe" and p.HasField("last_heartbeat_time") for p in pending)

        await eventually(ticking, what="the observation to tick", within=60)
        os.kill(worker.pid, signal.SIGSTOP)  # frozen inside its 5 s heartbeat timeout: no sample taken meanwhile
        try:
            await asyncio.sleep(4.5)  # the freeze is the scenario, not a wait for a condition
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        output = (await asyncio.wait_for(run.communicate(), timeout=120))[0].decode()
    finally:
        workers.stop_all()

    assert run.returncode == 7, output
    assert "INCONCLUSIVE" in output and "evidence incomplete" in output


async def _exists(client: Client, run_id: str) -> bool:
    try:
        await client.get_workflow_handle(run_id).describe()
    except Exception:
        return False
    return True


@pytest.mark.parametrize("verdict", [Verdict.DEVIATED, Verdict.NOT_RECOVERED, Verdict.ERROR], ids=lambda v: v.value)
def test_a_game_day_exits_with_the_code_of_its_worst_drill(gameday: Gameday, verdict: Verdict) -> None:
    """A resilient drill, then one ending ``verdict``: ``run --wait`` of the game day exits with that drill's code."""
    held = gameday.drill(drill(unique("day-held"), gameday.workdir))
    probe, fault, extra = DRILLS[verdict]
    worst = gameday.drill(drill(unique("day-worst"), gameday.workdir, probe=probe, fault=fault, extra=extra))
    day = gameday.workdir / f"{unique('day')}.yaml"
    day.write_text(f"gameday: {day.stem}\nteam: exit-codes\ndrills:\n  - file: {held}\n  - file: {worst}\n")

    result = gameday("run", str(day), "--wait", "--json")

    summary = last_json_line(result.stdout)
    assert summary["verdict"] == verdict.value, result.output
    assert [d["verdict"] for d in summary["drills"]] == ["RESILIENT", verdict.value], result.output
    assert result.exit_code == EXIT_CODES[verdict], result.output
