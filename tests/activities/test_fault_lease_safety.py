"""The fault lease's safety rules, one at a time, with real parts: a real paused process, a real SQLite ledger (or
one that cannot be opened), and a Temporal client whose frontend is not there (a closed port).

The whole path (a real dev server SIGSTOPped, a real worker process, the run ABORTED by ``lease``) is
``tests/workflows/test_fault_lease.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from gameday.activities.fault_lease import LEASE_EXPIRED, FaultLease
from gameday.activities.faults import process
from gameday.activities.faults.activities import FaultActivities
from gameday.activities.ledger import FaultLedger
from gameday.activities.run_scope import RunScope
from gameday.activities.store import Store
from gameday.activities.tables import LockRow
from gameday.config.app import GamedayConfig
from gameday.model.errors import GamedayError
from gameday.model.locks import lock_key
from gameday.model.records import FaultInput, FaultRecord, FaultState
from gameday.worker.devserver import free_port
from tests.harness import drill_from_yaml, process_state, sleeping_process, start_drill

RUN = "drill-lease-safety-1"


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real sleeping process with a pidfile: the drill's target."""
    with sleeping_process(tmp_path) as sleeping:
        yield sleeping


@pytest.fixture
async def unreachable() -> Client:
    """A client whose frontend is not there: every question to it fails."""
    return await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)


def fault_input(pidfile: Path, lease: str = "2s") -> FaultInput:
    drill = drill_from_yaml(
        f"""
name: lease-safety
fault_lease: {lease}
targets:
  sleeper: {{process: {{pidfile: "{pidfile}"}}}}
faults:
  - {{target: sleeper, action: pause}}
"""
    )
    fault = drill.faults[0]
    target = drill.targets["sleeper"]
    record = FaultRecord(index=0, label=fault.label, target="sleeper", kind=target.kind.value, action=fault.action)
    return FaultInput(
        run_id=RUN, index=0, target_name="sleeper", target=target, fault=fault, record=record, lease=drill.fault_lease
    )


async def apply_held(lease: FaultLease, inp: FaultInput) -> None:
    """What ``FaultActivities.apply_fault`` does around the provider: held first, the applied record kept."""
    async with lease.applying(inp) as held:
        record = await process.apply(inp)
        held.input = inp.model_copy(update={"record": record})


async def expire(lease: FaultLease, client: Client) -> None:
    """One check with Temporal unanswered for longer than any lease here."""
    lease.unanswered_since = time.monotonic() - 60
    await lease.check(client)


async def test_an_expired_lease_reverts_the_fault_and_records_why_in_the_ledger(
    sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path, unreachable: Client
) -> None:
    target, pidfile = sleeper
    ledger = FaultLedger(Store(f"sqlite:///{tmp_path / 'results.db'}"))
    inp = fault_input(pidfile)
    ledger.register(inp, RunScope("default", "test"))
    lease = FaultLease(ledger)
    await apply_held(lease, inp)
    ledger.mark(RUN, 0, FaultState.APPLIED)
    assert process_state(target.pid) == "T"

    await expire(lease, unreachable)

    assert process_state(target.pid) != "T"
    assert ledger.state(RUN, 0) == FaultState.REVERTED
    assert ledger.revert_reason(RUN, 0) == LEASE_EXPIRED
    assert [h.lease_reverted_at is not None for h in lease.held()] == [True]  # kept until its run is told


async def test_a_fault_whose_target_another_run_now_holds_is_forgotten_never_reverted(
    sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path, unreachable: Client
) -> None:
    target, pidfile = sleeper
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    ledger = FaultLedger(store)
    inp = fault_input(pidfile)
    ledger.register(inp, RunScope("default", "test"))
    key = lock_key(inp.target)
    assert key is not None
    with Session(store.engine) as session, session.begin():
        # Another drill holds the target now (this run's revert ran elsewhere, its lock was released and taken).
        now = datetime.now(UTC)
        session.add(LockRow(key=key, target="sleeper", run_id="drill-other-2", drill_name="other", acquired_at=now))
    lease = FaultLease(ledger)
    await apply_held(lease, inp)  # stands for the other drill's pause: the process is stopped

    await expire(lease, unreachable)

    assert process_state(target.pid) == "T", "the lease must never undo what another live drill holds"
    assert lease.held() == []
    assert ledger.revert_reason(RUN, 0) == ""


async def test_a_fault_the_ledger_says_another_worker_reverted_is_forgotten_never_reverted(
    sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path, unreachable: Client
) -> None:
    target, pidfile = sleeper
    ledger = FaultLedger(Store(f"sqlite:///{tmp_path / 'results.db'}"))
    inp = fault_input(pidfile)
    ledger.register(inp, RunScope("default", "test"))
    lease = FaultLease(ledger)
    await apply_held(lease, inp)
    ledger.mark(RUN, 0, FaultState.REVERTED)  # the drill's revert ran on another worker...
    os.kill(target.pid, signal.SIGSTOP)  # ...and something else (another drill) stopped the process since

    await expire(lease, unreachable)

    assert process_state(target.pid) == "T"
    assert lease.held() == []


async def test_with_the_results_database_unreachable_too_the_lease_reverts_from_memory(
    sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path, unreachable: Client
) -> None:
    target, pidfile = sleeper
    home = tmp_path / "db"
    home.mkdir()
    ledger = FaultLedger(Store(f"sqlite:///{home / 'results.db'}"))
    inp = fault_input(pidfile)
    ledger.register(inp, RunScope("default", "test"))
    lease = FaultLease(ledger)
    await apply_held(lease, inp)
    ledger.store.engine.dispose()
    shutil.rmtree(home)  # the database cannot be opened any more

    await expire(lease, unreachable)

    assert process_state(target.pid) != "T"
    [held] = lease.held()
    assert held.lease_reverted_at is not None and not held.ledger_written  # written once the database answers


def test_a_drills_lease_is_capped_by_the_workers_maximum(tmp_path: Path) -> None:
    inp = fault_input(tmp_path / "none.pid", lease="1h")
    assert FaultLease(max_lease=timedelta(minutes=10)).lease_of(inp) == timedelta(minutes=10)
    assert FaultLease(max_lease=timedelta(minutes=10)).lease_of(inp.model_copy(update={"lease": None})) == timedelta(
        seconds=60
    )


def test_the_workers_maximum_lease_is_a_duration_of_at_least_two_seconds() -> None:
    assert GamedayConfig(max_fault_lease="90s").max_lease == timedelta(seconds=90)
    for bad in ("soon", "1s", "0s"):
        with pytest.raises(GamedayError, match="GAMEDAY_MAX_FAULT_LEASE"):
            _ = GamedayConfig(max_fault_lease=bad).max_lease


async def test_a_rollback_revert_on_another_worker_tells_the_run_the_lease_reverted_it_first(
    sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path, unreachable: Client, client: Client
) -> None:
    """Worker A's lease reverted the fault; the run's rollback revert lands on worker B, which holds nothing: B
    reads the ledger's reason and tells the run (stop by ``lease``) before its own revert returns, so the run is
    ABORTED by lease whichever worker answers. The run is a real workflow no worker polls: its history shows the
    signal."""
    target, pidfile = sleeper
    ledger = FaultLedger(Store(f"sqlite:///{tmp_path / 'results.db'}"))
    handle = await start_drill(client, f"nobody-polls-{uuid.uuid4().hex[:8]}", DRILL.format(pidfile=pidfile))
    inp = fault_input(pidfile).model_copy(update={"run_id": handle.id})
    ledger.register(inp, RunScope("default", "test"))
    worker_a = FaultLease(ledger)
    await apply_held(worker_a, inp)
    ledger.mark(handle.id, 0, FaultState.APPLIED)
    await expire(worker_a, unreachable)
    assert process_state(target.pid) != "T" and ledger.revert_reason(handle.id, 0) == LEASE_EXPIRED

    worker_b = FaultActivities(ledger, lease=FaultLease(ledger))
    reverted = await ActivityEnvironment(client=client).run(worker_b.revert_fault, inp)

    assert reverted.state is FaultState.REVERTED and process_state(target.pid) != "T"
    stops = [
        event.workflow_execution_signaled_event_attributes
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert [s.signal_name for s in stops] == ["emergency_stop"]
    said = json.loads(stops[0].input.payloads[0].data)
    assert said["by"] == "lease" and said["reason"].startswith(LEASE_EXPIRED)
    await handle.terminate("test over")


DRILL = """
name: lease-safety
fault_lease: 2s
targets:
  sleeper: {{process: {{pidfile: "{pidfile}"}}}}
faults:
  - {{target: sleeper, action: pause}}
"""
