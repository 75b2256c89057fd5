"""``gameday demo`` as a person runs it: the installed command, its own Temporal dev server, worker and shop API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gameday.activities.store import Store
from gameday.demo.system import is_running
from gameday.model.records import Verdict
from tests.conftest import installed_binary

pytestmark = pytest.mark.integration

DEMO_TIMEOUT_S = 120


def processes_naming(data_dir: Path) -> dict[int, list[str]]:
    """Live processes whose command line names ``data_dir``: pid → argv."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(str(data_dir) in arg for arg in argv) and is_running(int(proc.name)):
            found[int(proc.name)] = argv
    return found


def demo_pids(data_dir: Path) -> dict[str, int]:
    return {pidfile.name: int(pidfile.read_text().strip()) for pidfile in (data_dir / "demo").glob("*.pid")}


def test_demo_runs_the_bundled_drill_to_resilient_reports_it_and_leaves_no_process_behind(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GAMEDAY_")}
    env["GAMEDAY_DATA_DIR"] = str(tmp_path)
    log = tmp_path / "demo.out"
    seen: dict[str, int] = {}
    with log.open("w") as out:
        demo = subprocess.Popen(
            [installed_binary("gameday"), "demo"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    try:
        # The services write their pidfiles while they run and remove them when they stop: note the pids meanwhile.
        while demo.poll() is None and len(seen) < 2 and time.monotonic() < deadline:
            seen.update(demo_pids(tmp_path))
            time.sleep(0.05)
        code = demo.wait(timeout=max(deadline - time.monotonic(), 1))
        output = log.read_text()
        assert code == 0, output
        assert "RESILIENT" in output
        assert "# Drill `demo-inventory-stall`: RESILIENT" in output
        assert "## Phases" in output and "## Faults" in output
        database_url = f"sqlite:///{tmp_path / 'gameday.db'}"
        assert f"results database: {database_url}" in output
        assert [run.verdict for run in Store(database_url).list_runs()] == [Verdict.RESILIENT]

        assert set(seen) == {"inventory.pid", "shop_api.pid"}, output
        assert [name for name, pid in seen.items() if is_running(pid)] == []
        left = processes_naming(tmp_path)
        assert [argv for argv in left.values() if "start-dev" in argv] == [], "the demo's Temporal dev server survived"
        assert left == {}
    finally:
        # Only when the demo did not clean up: end what it left (processes naming this test's directory), by pid.
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for pid in processes_naming(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
