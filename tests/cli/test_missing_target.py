"""A target that is not there is found before any fault, and nothing never applied is called reverted.

Through ``gameday run --wait`` against the session dev server and a ``gameday worker`` process: a pidfile missing
from the start (preflight refuses the drill), and one that vanishes between preflight and inject (its fault is
"not applied", the rollback reverts nothing, and says so)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.model.records import FaultState, Phase, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import last_json_line, unique

pytestmark = pytest.mark.integration


def pause_drill(name: str, pidfile: Path, probe: str = "true") -> str:
    return f"""
name: {name}
targets:
  api: {{process: {{pidfile: {pidfile}}}}}
hypothesis:
  - name: probe
    command: {{run: "{probe}"}}
faults:
  - {{target: api, action: pause}}
observe: {{duration: 500ms, interval: 100ms}}
recovery: {{within: 5s, interval: 100ms}}
"""


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def steps(output: str) -> dict[str, str]:
    """The phase lines `run --wait` printed, by phase: ``{"rollback": "ok  0.04s  1 fault(s) reverted"}``."""
    found = {}
    for line in output.splitlines():
        words = line.split(maxsplit=1)
        if line.startswith("  ") and words and words[0] in {p.value for p in Phase}:
            found[words[0]] = words[1]
    return found


def test_a_missing_pidfile_ends_the_drill_in_preflight_before_any_fault_and_nothing_is_called_reverted(
    gameday: Gameday,
) -> None:
    pidfile = gameday.workdir / "never-there.pid"

    result = gameday("run", str(gameday.drill(pause_drill(unique("no-pidfile"), pidfile))), "--wait", "--json")

    assert result.exit_code == 6, result.output
    shown = steps(result.output)
    assert shown["preflight"].startswith("failed") and f"cannot read pidfile {pidfile}" in shown["preflight"]
    assert "inject" not in shown
    assert "fault(s) reverted" not in result.output and "faults reverted" not in result.output
    record = gameday.recorded(str(last_json_line(result.stdout)["run_id"]))
    assert record.verdict == Verdict.ERROR and record.faults == []
    assert record.summary.endswith("(nothing injected)")


def test_a_pidfile_gone_at_inject_is_a_fault_never_applied_and_the_rollback_reverts_nothing(
    gameday: Gameday, sleeper: subprocess.Popen[bytes]
) -> None:
    pidfile = gameday.workdir / "vanishing.pid"
    pidfile.write_text(str(sleeper.pid))
    # Preflight resolves the target (the pidfile is there), then its probe removes the pidfile: inject finds none.
    text = pause_drill(unique("vanishing-pidfile"), pidfile, probe=f"rm -f {pidfile}")

    result = gameday("run", str(gameday.drill(text)), "--wait", "--json")

    assert result.exit_code == 6, result.output
    shown = steps(result.output)
    assert shown["preflight"].startswith("ok")
    assert shown["inject"].startswith("failed")
    assert f"'pause api' not applied: cannot read pidfile {pidfile}" in shown["inject"]
    assert "pause api: pause api" not in result.output  # the fault is named once
    assert shown["rollback"].startswith("ok") and "never applied, nothing to revert: pause api" in shown["rollback"]
    assert "fault(s) reverted" not in result.output and "faults reverted" not in result.output

    record = gameday.recorded(str(last_json_line(result.stdout)["run_id"]))
    [fault] = record.faults
    assert fault.state == FaultState.FAILED and fault.not_applied
    assert fault.applied_at is None and fault.reverted_at is None
    assert fault.output == "never applied: nothing to revert"
    assert record.summary.endswith("(nothing injected)")
    stat = Path(f"/proc/{sleeper.pid}/stat").read_text()
    assert stat.rsplit(")", 1)[1].split()[0] != "T"  # never stopped
    swept = gameday("sweep", "--dry-run")
    assert swept.exit_code == 0, swept.output
    assert record.run_id not in swept.stdout  # the fault ledger holds nothing of it to sweep
