"""Target locks and the fault ledger against a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.faults.activities import FaultActivities
from activities.ledger import FaultLedger
from activities.locks import TargetLocks
from activities.store import Store
from tests.harness import drill_from_yaml
from workflows.locks import LockInput, keys_of, lock_key
from workflows.records import FaultInput, FaultRecord, FaultState


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'results.db'}")


def _lock(run_id: str, *keys: str) -> LockInput:
    return LockInput(run_id=run_id, drill_name=f"drill-of-{run_id}", keys={k: k.split(":")[-1] for k in keys})


def test_a_lock_is_all_or_none_and_names_the_holder(store: Store) -> None:
    locks = TargetLocks(store)
    assert locks.acquire(_lock("run-a", "process:/run/a.pid", "http:http://db")) == []
    blocking = locks.acquire(_lock("run-b", "http:http://db", "command:other"))
    assert [(h.run_id, h.key, h.drill_name) for h in blocking] == [("run-a", "http:http://db", "drill-of-run-a")]
    assert {h.key for h in locks.holders()} == {"process:/run/a.pid", "http:http://db"}  # run-b took nothing


def test_taking_a_lock_again_for_the_same_run_succeeds_and_release_frees_it(store: Store) -> None:
    locks = TargetLocks(store)
    assert locks.acquire(_lock("run-a", "lock:db")) == []
    assert locks.acquire(_lock("run-a", "lock:db")) == []  # a retried attempt
    assert locks.release("run-a") == 1
    assert locks.release("run-a") == 0
    assert locks.acquire(_lock("run-b", "lock:db")) == []


def test_lock_keys_name_the_resource_not_the_drills_name_for_it() -> None:
    one = drill_from_yaml("""
name: one
targets:
  db: {process: {pidfile: /run/db.pid}}
  sh: {command: {}}
  shared: {command: {}, lock: primary-db}
faults:
  - {target: db, action: pause}
  - {target: sh, action: run, run: "true", revert: "true"}
  - {target: shared, action: run, run: "true", revert: "true"}
""")
    other = drill_from_yaml("""
name: other
targets:
  postgres: {process: {pidfile: /run/db.pid, restart: "start-db"}}
faults:
  - {target: postgres, action: pause}
""")
    assert keys_of(one) == {"process:/run/db.pid": "db", "lock:primary-db": "shared"}  # a bare shell locks nothing
    assert lock_key(other.targets["postgres"]) == "process:/run/db.pid"


def _fault_input(run_id: str, marker: Path) -> FaultInput:
    drill = drill_from_yaml(f"""
name: ledger
targets:
  sh: {{command: {{}}}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
""")
    fault = drill.faults[0]
    return FaultInput(
        run_id=run_id,
        index=0,
        target_name="sh",
        target=drill.targets["sh"],
        fault=fault,
        record=FaultRecord(index=0, label=fault.label, target="sh", kind="command", action="run"),
    )


async def test_a_fault_is_on_the_ledger_before_it_is_applied_and_marked_when_reverted(
    store: Store, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    ledger = FaultLedger(store)
    activities = FaultActivities(ledger)
    inp = _fault_input("run-ledger", marker)
    env = ActivityEnvironment()
    await env.run(activities.apply_fault, inp)
    assert marker.exists()
    assert ledger.state("run-ledger", 0) == FaultState.APPLIED
    assert [fi.record.label for fi in ledger.unreverted()["run-ledger"]] == [inp.record.label]
    await env.run(activities.revert_fault, inp)
    assert not marker.exists()
    assert ledger.state("run-ledger", 0) == FaultState.REVERTED
    assert ledger.unreverted() == {}


async def test_a_fault_that_cannot_be_put_on_record_is_not_applied(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    (tmp_path / "not-a-dir").write_text("a file where the database's folder should be")
    unwritable = Store(f"sqlite:///{tmp_path / 'not-a-dir' / 'results.db'}")
    activities = FaultActivities(FaultLedger(unwritable))
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.apply_fault, _fault_input("run-nodb", marker))
    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    assert "fault ledger cannot be written" in raised.value.message
    assert not marker.exists()
