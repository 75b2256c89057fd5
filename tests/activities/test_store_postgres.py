"""The results store on a real PostgreSQL server: the same records as on SQLite, idempotent saves, and a database
outage, under the ``record_run`` activity alone and in the middle of a whole drill, with the fault ledger brought
up to date once the database is back (so no later sweep reverts a finished drill's fault onto the next drill)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities import migrations
from gameday.activities.ledger import FaultLedger
from gameday.activities.locks import TargetLocks
from gameday.activities.store import Store, StoreActivities, make_engine
from gameday.activities.sweep import sweep
from gameday.model.data_loss import DataLoss
from gameday.model.records import FaultState, Phase, RunRecord, StopRequest, Verdict
from gameday.report.run import render_json
from tests.activities.test_store import NO_TRAFFIC, T0, make_record
from tests.harness import eventually, finish, running_worker, start_drill, wait_phase, wait_until_async
from tests.pg_support import PostgresServer

FULL = {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}


@pytest.fixture
def pg_store(postgres_url: str) -> Store:
    """A store on a fresh PostgreSQL database, upgraded as a team would: ``gameday db upgrade`` first."""
    migrations.upgrade(make_engine(postgres_url))
    return Store(postgres_url)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'gameday.db'}")


def counts_of(record: RunRecord) -> dict[str, int]:
    return {
        "runs": 1,
        "phases": len(record.steps),
        "faults": len(record.faults),
        "probe_results": len(record.probes),
        **NO_TRAFFIC,
        "observations": int(record.coverage is not None),
    }


@pytest.mark.parametrize(
    "record",
    [
        make_record(),
        make_record("aborted", verdict=Verdict.ABORTED),  # a stop request, its reason and time
        make_record("in-progress", verdict=None, steps=2, faults=1),  # nullable columns left empty
        make_record("lost-writes").model_copy(  # what the read-back found: report --format json's data_loss
            update={
                "data_loss": DataLoss(
                    acknowledged=10_000,
                    checked=10_000,
                    lost=17,
                    duplicated=2,
                    sampled=False,
                    seconds=4.2,
                    lost_ids=[1796667799139017, 1796667799139018],
                    unaccounted=300,
                )
            }
        ),
    ],
    ids=["deviated", "aborted", "in-progress", "data-loss"],
)
def test_a_record_saved_on_postgresql_and_on_sqlite_reads_back_the_same(
    record: RunRecord, pg_store: Store, sqlite_store: Store
) -> None:
    pg_store.save(record)
    sqlite_store.save(record)

    from_pg, from_sqlite = pg_store.get(record.run_id), sqlite_store.get(record.run_id)

    assert from_pg == from_sqlite == record
    assert from_pg is not None and from_sqlite is not None
    assert render_json(from_pg) == render_json(from_sqlite) == render_json(record)
    if record.data_loss is not None:
        shown = json.loads(render_json(from_pg))["data_loss"]
        assert (shown["acknowledged"], shown["lost"], shown["duplicated"]) == (10_000, 17, 2)


def test_saving_again_on_postgresql_keeps_one_row_per_key(pg_store: Store) -> None:
    early = make_record(verdict=None, steps=2, faults=1)
    final = make_record()
    for _ in range(3):
        pg_store.save(early)
    pg_store.save(final)
    pg_store.save(final)

    assert pg_store.counts(final.run_id) == FULL
    assert pg_store.get(final.run_id) == final


def test_listing_on_postgresql_orders_and_filters_like_sqlite(pg_store: Store, sqlite_store: Store) -> None:
    runs = [
        make_record("a", team="payments", verdict=Verdict.RESILIENT, started_at=T0),
        make_record("b", team="search", verdict=Verdict.DEVIATED, started_at=T0 + timedelta(hours=1)),
        make_record("c", team="payments", verdict=Verdict.RESILIENT, started_at=T0 + timedelta(hours=2)),
    ]
    for run in runs:
        pg_store.save(run)
        sqlite_store.save(run)

    for filters in ({}, {"team": "payments"}, {"verdict": Verdict.RESILIENT}, {"limit": 1}):
        assert pg_store.list_runs(**filters) == sqlite_store.list_runs(**filters)
    assert [run.run_id for run in pg_store.list_runs()] == ["c", "b", "a"]


# --- a database outage ----------------------------------------------------------------------------------------


async def test_record_run_while_postgresql_is_down_is_retryable_and_lands_once_when_it_is_back(
    pg_store: Store, postgres_server: PostgresServer, postgres_url: str
) -> None:
    record = make_record()
    activities = StoreActivities(pg_store)
    await ActivityEnvironment().run(activities.record_run, make_record(verdict=None, steps=2, faults=1))

    postgres_server.stop()
    try:
        with pytest.raises(ApplicationError) as caught:
            await ActivityEnvironment().run(activities.record_run, record)
    finally:
        postgres_server.start()

    error = caught.value
    assert error.type == "StoreUnavailable"
    assert not error.non_retryable
    assert "results database unavailable" in str(error)
    assert postgres_server.password not in str(error)
    assert postgres_url not in str(error)
    # Temporal stores the whole cause chain with the failure: none of it may hold the password either.
    cause: BaseException | None = error
    while cause is not None:
        assert postgres_server.password not in str(cause)
        cause = cause.__cause__

    # What Temporal does next: the same activity again, on the connections of the same store.
    await ActivityEnvironment().run(activities.record_run, record)
    await ActivityEnvironment().run(activities.record_run, record)

    assert pg_store.counts(record.run_id) == FULL
    assert pg_store.get(record.run_id) == record


async def test_a_worker_store_made_while_postgresql_is_down_records_once_it_is_back(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    migrations.upgrade(make_engine(postgres_url))
    postgres_server.stop()
    try:
        store = Store(postgres_url)  # a worker starting during the outage: no exception, a warning
        with pytest.raises(ApplicationError) as caught:
            await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())
        assert caught.value.type == "StoreUnavailable"
    finally:
        postgres_server.start()

    await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())

    assert store.counts("run-1") == FULL


async def test_a_drill_survives_postgresql_stopped_during_observation_and_records_every_row_once(
    client: Client, pg_store: Store, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    marker = tmp_path / "injected"
    drill = f"""
name: results-db-outage
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: shell answers
    command: {{run: "true"}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: 2s, interval: 200ms}}
recovery: {{within: 10s, interval: 200ms}}
"""
    async with running_worker(client, pg_store) as queue:
        handle = await start_drill(client, queue, drill)
        # The snapshot written after inject holds the applied fault: the drill is now observing, for 2 s.
        await wait_until_async(
            lambda: marker.exists() and pg_store.counts(handle.id)["faults"] == 1, what="the fault on record"
        )
        postgres_server.stop()
        try:

            async def record_failed_while_down() -> bool:
                pending = (await handle.describe()).raw_description.pending_activities
                return any(
                    a.activity_type.name == "record_run"
                    and a.attempt >= 2
                    and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
                    for a in pending
                )

            # The final record is attempted, fails and waits in Temporal for its next retry.
            await eventually(record_failed_while_down, what="record_run to fail while PostgreSQL is down", within=60)
            described = str((await handle.describe()).raw_description)
            assert "StoreUnavailable" in described
            assert postgres_server.password not in described
        finally:
            postgres_server.start()
        record = await finish(handle, "results_db_outage", within=90)

    assert record.verdict == Verdict.RESILIENT, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    assert not marker.exists()
    assert pg_store.counts(record.run_id) == counts_of(record)
    # The revert ran while PostgreSQL was down: its own ledger write failed, the final record brought it up to date.
    assert FaultLedger(pg_store).state(record.run_id, 0) == FaultState.REVERTED
    assert FaultLedger(pg_store).pending() == []
    assert TargetLocks(pg_store).holders() == []
    saved = pg_store.get(record.run_id)
    assert saved == record
    # And the report JSON is the one the same record gives from SQLite.
    on_sqlite = Store(f"sqlite:///{tmp_path / 'same.db'}")
    on_sqlite.save(record)
    stored_on_sqlite = on_sqlite.get(record.run_id)
    assert saved is not None and stored_on_sqlite is not None
    assert render_json(saved) == render_json(stored_on_sqlite)


async def test_a_revert_done_while_postgresql_is_down_is_reconciled_and_never_swept_onto_the_next_drill(
    client: Client, pg_store: Store, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    flag, go = tmp_path / "flag", tmp_path / "go"

    def drill(name: str, revert: str, observe: str) -> str:
        return f"""
name: {name}
targets:
  flag: {{command: {{}}, lock: "flag-file"}}
faults:
  - {{target: flag, action: run, run: "touch {flag}", revert: '{revert}'}}
observe: {{duration: {observe}}}
"""

    # The first drill's revert waits for the test, so PostgreSQL is down exactly while it runs and is marked.
    slow_revert = f"while [ ! -e {go} ]; do sleep 0.05; done; rm -f {flag}"
    async with running_worker(client, pg_store) as queue:
        first = await start_drill(client, queue, drill("first", slow_revert, "300ms"))

        async def reverting() -> bool:
            pending = (await first.describe()).raw_description.pending_activities
            return any(a.activity_type.name == "revert_fault" for a in pending)

        await eventually(reverting, what="the revert to start", within=60)
        postgres_server.stop()
        try:
            go.touch()
            await wait_until_async(lambda: not flag.exists(), what="the revert to run", within=60)

            async def writes_failing_after_the_revert() -> bool:
                # The revert is done (and its ledger write failed); the next writes wait for the database.
                pending = (await first.describe()).raw_description.pending_activities
                return any(
                    a.activity_type.name in ("release_targets", "record_run") and a.attempt >= 2 for a in pending
                )

            await eventually(writes_failing_after_the_revert, what="writes to fail while PostgreSQL is down", within=90)
        finally:
            postgres_server.start()
        done = await finish(first, "revert_while_db_down", within=120)
        assert done.verdict == Verdict.RESILIENT, done.summary
        assert FaultLedger(pg_store).state(done.run_id, 0) == FaultState.REVERTED

        # The next drill takes the same target and applies the same fault; then a worker starts and sweeps.
        second = await start_drill(client, queue, drill("second", f"rm -f {flag}", "5m"))
        await wait_phase(second, Phase.OBSERVE)
        assert flag.exists()
        report = await sweep(pg_store, client)
        assert report.faults == [] and report.reconciled == []
        assert flag.exists()  # the second drill's fault, untouched
        await second.signal("emergency_stop", StopRequest(reason="end of test", by="test"))
        await finish(second, "revert_while_db_down_next")

    saved = pg_store.get(done.run_id)
    assert saved is not None and saved.verdict == Verdict.RESILIENT
    assert all(step.phase != Phase.SWEEP for step in saved.steps)  # the finished run's record is not rewritten
