"""Command faults through the activities, with real shell commands writing marker files."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.activities.faults.command import OUTPUT_LIMIT
from gameday.model.drill import CommandTarget, RunFault, Target
from gameday.model.records import FaultState
from tests.harness import wait_until

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import Eventually, FaultInputFactory, Processes


def in_dir(path: Path) -> Target:
    return Target(command=CommandTarget(cwd=str(path)))


def run(command: str, revert: str = "true", timeout: timedelta = timedelta(seconds=10)) -> RunFault:
    return RunFault(action="run", target="shell", run=command, revert=revert, timeout=timeout)


async def test_run_applies_in_the_target_directory_and_revert_undoes_it(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    fault = run("echo degraded > mode && echo done", revert="rm -f mode")

    applied = await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault))
    assert (tmp_path / "mode").read_text() == "degraded\n"
    assert applied.state is FaultState.APPLIED
    assert applied.output == "done\n"

    reverted = await activity_env.run(revert_fault, fault_input(in_dir(tmp_path), fault, applied.changed))
    assert not (tmp_path / "mode").exists()
    assert reverted.state is FaultState.REVERTED


async def test_reverting_a_command_twice_or_without_a_record_is_harmless(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    fault = run("touch mode", revert="rm -f mode")

    for _ in range(2):
        reverted = await activity_env.run(revert_fault, fault_input(in_dir(tmp_path), fault))
        assert reverted.state is FaultState.REVERTED


async def test_a_failing_run_is_a_non_retryable_apply_error_with_exit_code_and_output(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), run("echo boom >&2; exit 3")))

    assert raised.value.type == "FaultApplyError"
    assert raised.value.non_retryable
    assert "exited with code 3" in raised.value.message
    assert "boom" in raised.value.message


async def test_a_failing_revert_is_a_retryable_revert_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    fault = run("true", revert="echo still broken; exit 4")

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(revert_fault, fault_input(in_dir(tmp_path), fault))

    assert raised.value.type == "FaultRevertError"
    assert not raised.value.non_retryable
    assert "exited with code 4" in raised.value.message
    assert "still broken" in raised.value.message


async def test_a_timed_out_run_kills_its_whole_process_group(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    processes: Processes,
    eventually: Eventually,
    tmp_path: Path,
) -> None:
    # The background sleep is a grandchild: only killing the process group stops it.
    fault = run("sleep 300 & echo $! > child.pid; wait", timeout=timedelta(milliseconds=500))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault))

    child = int((tmp_path / "child.pid").read_text())
    processes.adopt(child)
    assert raised.value.type == "FaultApplyError"
    assert "timed out" in raised.value.message
    await eventually(lambda: processes.state(child) in (None, "Z"), "the background child is dead")


async def test_a_cancelled_run_kills_its_process_group(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    processes: Processes,
    eventually: Eventually,
    tmp_path: Path,
) -> None:
    # A cancelled apply must not keep going while the rollback reverts it.
    pidfile = tmp_path / "child.pid"
    fault = run(f"sleep 300 & echo $! > {pidfile}; wait", timeout=timedelta(seconds=60))
    applying = asyncio.create_task(activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault)))
    await eventually(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), "the command started")
    child = int(pidfile.read_text())
    processes.adopt(child)

    activity_env.cancel()

    with pytest.raises(asyncio.CancelledError):
        await applying
    await eventually(lambda: processes.state(child) in (None, "Z"), "the background child is dead")


async def test_output_keeps_the_tail_of_a_long_output(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    applied = await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), run("seq 1 5000")))

    assert applied.output.endswith("4999\n5000\n")
    assert len(applied.output.encode()) <= OUTPUT_LIMIT + len("…".encode())


# --- nothing a command starts outlives its worker, its cancel or its revert ---------------------------------

_HOST = """
import asyncio, sys
from datetime import timedelta
from gameday.activities.faults.command import run_shell

async def main() -> None:
    result = await run_shell(sys.argv[1], timeout=timedelta(seconds=60), guard=True)
    print("shell exited", result.exit_code, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""
"""A stand-in worker: runs one fault command as ``apply`` does, then idles until the test SIGKILLs it."""


def _tree(marker: str) -> list[int]:
    """Live ``sleep <marker>`` processes (the unique sleep of one test, which stands for the fault's tree)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize(
    ("case", "command"),
    [
        ("pipeline", "{{ sleep {marker}; touch {flag}; }} | cat"),
        ("subshell", "( sleep {marker}; touch {flag} ); true"),
        ("background job", "{{ sleep {marker}; touch {flag}; }} & echo started"),
    ],
)
def test_a_sigkilled_worker_takes_every_process_of_its_fault_command_with_it(
    tmp_path: Path, case: str, command: str
) -> None:
    marker = f"{20 + secrets.randbelow(10_000) / 10_000:.4f}"  # a sleep no other test runs
    flag = tmp_path / "fault-landed"
    root = Path(__file__).resolve().parents[3]
    host = subprocess.Popen(
        [sys.executable, "-c", _HOST, command.format(marker=marker, flag=flag)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
    )
    try:
        wait_until(lambda: bool(_tree(marker)), what=f"the {case} to be running", timeout=15)
        if case == "background job":
            assert host.stdout is not None
            assert host.stdout.readline().startswith(b"shell exited 0"), "the apply completed, its job running"
        host.kill()
        host.wait(timeout=10)
        wait_until(lambda: not _tree(marker), what=f"every process of the {case} to die with the worker", timeout=5)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(timeout=10)
        for pid in _tree(marker):
            os.kill(pid, signal.SIGKILL)
    assert not flag.exists()


async def test_a_cancelled_run_kills_its_pipeline_members_too(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, eventually: Eventually, tmp_path: Path
) -> None:
    marker = f"{20 + secrets.randbelow(10_000) / 10_000:.4f}"
    fault = run(f"{{ sleep {marker}; touch landed; }} | cat", timeout=timedelta(seconds=60))
    applying = asyncio.create_task(activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault)))
    await eventually(lambda: bool(_tree(marker)), "the pipeline to be running")

    activity_env.cancel()

    with pytest.raises(asyncio.CancelledError):
        await applying
    assert not _tree(marker), "nothing of the pipeline is left once the cancelled apply has ended"
    assert not (tmp_path / "landed").exists()


async def test_the_revert_stops_what_the_run_left_running_before_running_the_revert(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, eventually: Eventually, tmp_path: Path
) -> None:
    marker = f"{20 + secrets.randbelow(10_000) / 10_000:.4f}"
    fault = run(f"(sleep {marker}; touch landed) &", revert="rm -f landed")
    applied = await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault))
    assert _tree(marker), "the job the fault started runs on after the apply"
    assert "guard" in applied.changed

    reverted = await activity_env.run(revert_fault, fault_input(in_dir(tmp_path), fault, applied.changed))

    assert not _tree(marker)
    assert "stopped what the command left running" in reverted.output
    again = await activity_env.run(revert_fault, fault_input(in_dir(tmp_path), fault, applied.changed))
    assert again.state is FaultState.REVERTED  # the supervisor is gone: a second revert is harmless


async def test_a_command_sees_none_of_the_worker_secrets_only_what_the_worker_gives_drills(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = secrets.token_hex(8)
    for name in ("GAMEDAY_DB_URL", "SLACK_BOT_TOKEN", "AWS_SECRET_ACCESS_KEY", "DRILL_FLAG", "GAMEDAY_EXTRA"):
        monkeypatch.setenv(name, f"{name}-{token}")
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "DRILL_*,GAMEDAY_EXTRA")
    fault = run('env > seen; echo "$PATH" > path', revert="rm -f seen path")

    await activity_env.run(apply_fault, fault_input(in_dir(tmp_path), fault))

    seen = (tmp_path / "seen").read_text()
    assert token in seen and f"DRILL_FLAG=DRILL_FLAG-{token}" in seen  # allowed by the worker
    for name in ("GAMEDAY_DB_URL", "SLACK_BOT_TOKEN", "AWS_SECRET_ACCESS_KEY", "GAMEDAY_EXTRA"):
        assert f"{name}=" not in seen, f"{name} reached the drill's command"
    assert (tmp_path / "path").read_text().strip() == os.environ["PATH"]
