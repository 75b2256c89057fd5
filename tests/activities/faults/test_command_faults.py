"""Command faults through the activities, with real shell commands writing marker files."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.faults.activities import apply_fault, revert_fault
from activities.faults.command import OUTPUT_LIMIT
from workflows.drill import CommandTarget, RunFault, Target
from workflows.records import FaultState

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
