"""Process faults against a real ``sleep 300`` child: pause/resume and kill/restart, through the activities."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, capture_target, revert_fault
from gameday.activities.faults.process import read_stat
from gameday.model.drill import KillFault, PauseFault, ProcessTarget, Target
from gameday.model.records import FaultInput, FaultState
from gameday.worker.devserver import DevServer, free_port

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import Eventually, FaultInputFactory, Processes, Sleeper

RUNNING = ("S", "R")


def by_pidfile(sleeper: Sleeper, restart: str | None = None) -> Target:
    return Target(process=ProcessTarget(pidfile=str(sleeper.pidfile), restart=restart))


PAUSE = PauseFault(action="pause", target="api")
KILL = KillFault(action="kill", target="api")


async def test_pause_stops_the_process_and_revert_resumes_it(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    applied = await activity_env.run(apply_fault, fault_input(by_pidfile(sleeper), PAUSE))
    await eventually(lambda: sleeper.state == "T", "the process is stopped")
    assert applied.state is FaultState.APPLIED
    assert applied.applied_at is not None
    assert applied.changed["pid"] == str(sleeper.pid)
    assert applied.changed["starttime"].isdigit()

    reverted = await activity_env.run(revert_fault, fault_input(by_pidfile(sleeper), PAUSE, applied.changed))
    await eventually(lambda: sleeper.state in RUNNING, "the process runs again")
    assert reverted.state is FaultState.REVERTED
    assert reverted.reverted_at is not None


async def test_pause_by_pid_records_that_pid(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    target = Target(process=ProcessTarget(pid=sleeper.pid))
    applied = await activity_env.run(apply_fault, fault_input(target, PAUSE))
    await eventually(lambda: sleeper.state == "T", "the process is stopped")
    assert applied.changed["pid"] == str(sleeper.pid)


async def test_reverting_a_pause_twice_is_harmless(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    applied = await activity_env.run(apply_fault, fault_input(by_pidfile(sleeper), PAUSE))
    await eventually(lambda: sleeper.state == "T", "the process is stopped")
    inp = fault_input(by_pidfile(sleeper), PAUSE, applied.changed)

    first = await activity_env.run(revert_fault, inp)
    second = await activity_env.run(revert_fault, inp)

    await eventually(lambda: sleeper.state in RUNNING, "the process runs again")
    assert first.state is second.state is FaultState.REVERTED


async def test_revert_with_an_empty_record_still_resumes_the_process(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    # The worker crashed after SIGSTOP but before apply returned its record: revert gets nothing recorded.
    await activity_env.run(apply_fault, fault_input(by_pidfile(sleeper), PAUSE))
    await eventually(lambda: sleeper.state == "T", "the process is stopped")

    reverted = await activity_env.run(revert_fault, fault_input(by_pidfile(sleeper), PAUSE))

    await eventually(lambda: sleeper.state in RUNNING, "the process runs again")
    assert reverted.state is FaultState.REVERTED


async def test_revert_after_the_process_died_is_reported_not_raised(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper
) -> None:
    applied = await activity_env.run(apply_fault, fault_input(by_pidfile(sleeper), PAUSE))
    sleeper.proc.kill()
    sleeper.proc.wait()

    reverted = await activity_env.run(revert_fault, fault_input(by_pidfile(sleeper), PAUSE, applied.changed))

    assert reverted.state is FaultState.REVERTED
    assert "gone" in reverted.output


async def test_revert_does_not_resume_a_process_that_reused_the_pid(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    applied = await activity_env.run(apply_fault, fault_input(by_pidfile(sleeper), PAUSE))
    await eventually(lambda: sleeper.state == "T", "the process is stopped")
    # Same pid, another start time: to the revert this is a different process, which it must not touch.
    stranger = {**applied.changed, "starttime": "1"}

    reverted = await activity_env.run(revert_fault, fault_input(by_pidfile(sleeper), PAUSE, stranger))

    assert "another process" in reverted.output
    assert sleeper.state == "T"


async def test_kill_then_revert_restarts_the_process_with_its_restart_command(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    sleeper: Sleeper,
    processes: Processes,
    eventually: Eventually,
) -> None:
    target = by_pidfile(sleeper, restart=f"sleep 300 & echo $! > {sleeper.pidfile}")
    applied = await activity_env.run(apply_fault, fault_input(target, KILL))
    await eventually(lambda: sleeper.state in ("Z", None), "the process is dead")
    assert applied.changed["signal"] == "SIGKILL"

    reverted = await activity_env.run(revert_fault, fault_input(target, KILL, applied.changed))

    new_pid = int(sleeper.pidfile.read_text())
    assert new_pid != sleeper.pid
    assert processes.state(new_pid) in RUNNING
    assert f"restarted as pid {new_pid}" in reverted.output

    again = await activity_env.run(revert_fault, fault_input(target, KILL, applied.changed))
    assert "nothing to restart" in again.output
    assert int(sleeper.pidfile.read_text()) == new_pid


async def test_kill_revert_leaves_a_running_process_alone(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, tmp_path: Path
) -> None:
    # Apply never ran (a crash before the signal): the process runs, so `restart` must not start a second one.
    marker = tmp_path / "restarted"
    target = by_pidfile(sleeper, restart=f"touch {marker}")

    reverted = await activity_env.run(revert_fault, fault_input(target, KILL))

    assert "nothing to restart" in reverted.output
    assert not marker.exists()


async def test_a_failing_restart_is_a_retryable_revert_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    target = Target(process=ProcessTarget(pidfile=str(tmp_path / "missing.pid"), restart="echo no luck; exit 1"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(revert_fault, fault_input(target, KILL))

    assert raised.value.type == "FaultRevertError"
    assert not raised.value.non_retryable
    assert "no luck" in raised.value.message


@pytest.mark.parametrize("pidfile_text", [None, "not a pid", "-1", "1"])
async def test_apply_to_a_missing_or_bad_pidfile_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path, pidfile_text: str | None
) -> None:
    pidfile = tmp_path / "app.pid"
    if pidfile_text is not None:
        pidfile.write_text(pidfile_text)
    target = Target(process=ProcessTarget(pidfile=str(pidfile)))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, KILL))

    assert raised.value.type == "FaultApplyError"
    assert raised.value.non_retryable


async def test_apply_refuses_to_signal_the_worker_itself(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory
) -> None:
    target = Target(process=ProcessTarget(pid=os.getpid()))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, PAUSE))

    assert raised.value.type == "FaultApplyError"
    assert "refusing" in raised.value.message


async def test_apply_to_a_dead_pid_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper
) -> None:
    sleeper.proc.send_signal(signal.SIGKILL)
    sleeper.proc.wait()
    target = Target(process=ProcessTarget(pid=sleeper.pid))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, PAUSE))

    assert raised.value.type == "FaultApplyError"
    assert raised.value.non_retryable


# --- gameday itself is never a target; the revert goes by the state captured before the apply ------------


REFUSED = {
    "the worker's parent": "a parent of this gameday worker",
    "the pid namespace's init": "the init process of this pid namespace",
    "a Temporal dev server": "a Temporal server",
}


def _pid_of(who: str, tmp_path: Path) -> tuple[int, DevServer | None]:
    if who == "the worker's parent":
        return os.getppid(), None
    if who == "the pid namespace's init":
        return 1, None
    server = DevServer(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=free_port()).start()
    assert server.process is not None
    return server.process.pid, server


@pytest.mark.parametrize("who", list(REFUSED))
@pytest.mark.parametrize("step", [capture_target, apply_fault], ids=["capture", "apply"])
async def test_a_process_fault_on_gameday_itself_is_refused_with_what_it_is(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    tmp_path: Path,
    who: str,
    step: Callable[[FaultInput], Awaitable[object]],
) -> None:
    pid, server = _pid_of(who, tmp_path)
    try:
        with pytest.raises(ApplicationError) as raised:
            pidfile = tmp_path / "target.pid"  # a pidfile may name any pid, 1 included (a ``pid:`` of 1 is invalid)
            pidfile.write_text(str(pid))
            await activity_env.run(step, fault_input(Target(process=ProcessTarget(pidfile=str(pidfile))), PAUSE))
        assert read_stat(pid) is not None and not read_stat(pid).stopped  # type: ignore[union-attr]
    finally:
        if server is not None:
            server.stop()

    assert raised.value.non_retryable
    assert f"refusing to signal pid {pid}" in raised.value.message
    assert f"it is {REFUSED[who]}" in raised.value.message, raised.value.message


async def test_a_revert_resumes_the_captured_process_whatever_the_record_says(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    processes: Processes,
    eventually: Eventually,
) -> None:
    paused, other = processes.start_sleeper(), processes.start_sleeper()
    inp = fault_input(by_pidfile(paused), PAUSE)
    captured = await activity_env.run(capture_target, inp)
    os.kill(paused.pid, signal.SIGSTOP)  # the apply's SIGSTOP went out; its worker died before the record
    paused.pidfile.write_text(str(other.pid))  # and the pidfile has moved on since
    interrupted = inp.record.model_copy(update={"state": FaultState.FAILED})

    await activity_env.run(revert_fault, inp.model_copy(update={"record": interrupted, "before": captured.facts}))

    await eventually(lambda: paused.state in RUNNING, "the captured process runs again")


async def test_a_revert_leaves_a_process_stopped_before_the_fault_stopped(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, sleeper: Sleeper, eventually: Eventually
) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    await eventually(lambda: sleeper.state == "T", "the process is stopped before the drill")
    inp = fault_input(by_pidfile(sleeper), PAUSE)
    captured = await activity_env.run(capture_target, inp)
    applied = await activity_env.run(apply_fault, inp.model_copy(update={"before": captured.facts}))

    reverted = await activity_env.run(
        revert_fault, inp.model_copy(update={"record": applied, "before": captured.facts})
    )

    assert sleeper.state == "T"
    assert "already stopped before the fault" in reverted.output
    os.kill(sleeper.pid, signal.SIGCONT)


async def test_apply_signals_the_captured_process_even_when_the_pidfile_names_another_since(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, processes: Processes, eventually: Eventually
) -> None:
    captured_one, other = processes.start_sleeper(), processes.start_sleeper()
    inp = fault_input(by_pidfile(captured_one), PAUSE)
    captured = await activity_env.run(capture_target, inp)
    captured_one.pidfile.write_text(str(other.pid))  # rewritten between capture and apply (a restart, a reuse)

    applied = await activity_env.run(apply_fault, inp.model_copy(update={"before": captured.facts}))

    await eventually(lambda: captured_one.state == "T", "the captured process is stopped")
    assert applied.changed["pid"] == str(captured_one.pid)
    assert other.state in RUNNING  # the process the pidfile names now was never signalled
    os.kill(captured_one.pid, signal.SIGCONT)


async def test_apply_after_the_captured_process_is_gone_signals_nothing_and_is_not_applied(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, processes: Processes
) -> None:
    gone, other = processes.start_sleeper(), processes.start_sleeper()
    inp = fault_input(by_pidfile(gone), PAUSE)
    captured = await activity_env.run(capture_target, inp)
    gone.proc.send_signal(signal.SIGKILL)
    gone.proc.wait()
    gone.pidfile.write_text(str(other.pid))  # the supervisor started a replacement: not the process captured

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp.model_copy(update={"before": captured.facts}))

    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    message = raised.value.message
    assert message.startswith(f"{inp.record.label}: not applied: "), message
    assert f"the process captured before the fault (pid {gone.pid}) is gone" in message
    assert "nothing was sent SIGSTOP" in message
    assert other.state in RUNNING
    # Not counted applied: the record built from this failure says so, and its revert touches nothing.
    failed = inp.record.model_copy(update={"state": FaultState.FAILED, "error": message})
    assert failed.not_applied
    reverted = await activity_env.run(revert_fault, inp.model_copy(update={"record": failed, "before": captured.facts}))
    assert reverted.output == "never applied: nothing to revert" and reverted.reverted_at is None
    assert other.state in RUNNING
