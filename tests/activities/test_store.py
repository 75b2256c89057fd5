"""The results store on real SQLite files: round trips, idempotent saves, listing, and the activity boundary."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.store import Store, StoreActivities, redact_url
from gameday.model.records import (
    FaultRecord,
    FaultState,
    Phase,
    ProbeResult,
    RunRecord,
    StepRecord,
    StepStatus,
    StopRequest,
    Verdict,
)

T0 = datetime(2024, 5, 7, 14, 0, tzinfo=UTC)
NO_TRAFFIC = {"traffic_runs": 0, "traffic_windows": 0, "observations": 0}
"""The counts of the traffic and coverage tables of a run that sent no traffic and kept no observation coverage
(see ``test_store_traffic.py`` for one that did)."""
PHASES = [Phase.PREFLIGHT, Phase.INJECT, Phase.OBSERVE, Phase.ROLLBACK, Phase.VERIFY]


def make_record(
    run_id: str = "run-1",
    *,
    team: str = "payments",
    drill: str = "checkout-db-outage",
    verdict: Verdict | None = Verdict.DEVIATED,
    started_at: datetime = T0,
    steps: int = 5,
    faults: int = 2,
) -> RunRecord:
    """A run that got through ``steps`` phases with ``faults`` faults, probed in each phase it reached."""
    at = [started_at + timedelta(seconds=10 * i) for i in range(len(PHASES) + 1)]
    return RunRecord(
        run_id=run_id,
        drill_name=drill,
        team=team,
        source="drills/checkout.yaml",
        started_by="alice",
        phase=Phase.DONE if verdict else PHASES[steps - 1],
        verdict=verdict,
        started_at=started_at,
        ended_at=at[-1] if verdict else None,
        steps=[
            StepRecord(phase=phase, status=StepStatus.OK, started_at=at[i], ended_at=at[i + 1], detail=f"{phase} ok")
            for i, phase in enumerate(PHASES[:steps])
        ],
        faults=[
            FaultRecord(
                index=i,
                label=f"fault {i}",
                target="db",
                kind="docker",
                action="pause",
                state=FaultState.REVERTED,
                applied_at=at[1],
                reverted_at=at[3],
                changed={"container": "shop-db", "was": "running"},
                output="paused",
            )
            for i in range(faults)
        ],
        probes=[
            ProbeResult(
                probe="api fast",
                phase=phase,
                kind="http",
                samples=20,
                failures=i,
                ok=i == 0,
                latency_p50=0.012,
                latency_p95=0.25,
                latency_max=0.4,
                at=at[i + 1],
                problems=[] if i == 0 else ["p95 above 300ms"],
            )
            for i, phase in enumerate(PHASES[:steps])
            if phase in (Phase.PREFLIGHT, Phase.OBSERVE, Phase.VERIFY)
        ],
        stop=StopRequest(reason="db team asked", by="bob", received_at=at[2]) if verdict is Verdict.ABORTED else None,
        time_to_recovery=4.5 if verdict else None,
        summary="p95 latency broke under fault; recovered in 4.5 s",
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    # A directory that does not exist yet: the store makes it.
    return Store(f"sqlite:///{tmp_path / 'results' / 'gameday.db'}")


def test_saved_record_reads_back_equal_with_aware_utc_datetimes(store: Store) -> None:
    record = make_record(
        verdict=Verdict.ABORTED, started_at=datetime(2024, 5, 7, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    store.save(record)

    loaded = store.get(record.run_id)

    assert loaded == record
    assert loaded is not None
    assert loaded.stop is not None and loaded.stop.received_at is not None
    for at in [
        loaded.started_at,
        loaded.stop.received_at,
        *(s.started_at for s in loaded.steps),
        *(p.at for p in loaded.probes),
    ]:
        assert at.utcoffset() == timedelta(0)


def test_get_of_unknown_run_returns_none(store: Store) -> None:
    assert store.get("no-such-run") is None


def test_saving_the_same_record_three_times_keeps_one_row_per_key(store: Store) -> None:
    record = make_record()
    for _ in range(3):
        store.save(record)

    assert store.counts(record.run_id) == {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}
    assert store.get(record.run_id) == record


def test_saving_a_grown_record_updates_rows_in_place_and_adds_the_new_ones(store: Store) -> None:
    early = make_record(verdict=None, steps=2, faults=1)
    early.faults[0].state = FaultState.APPLIED
    final = make_record(steps=5, faults=3)
    store.save(early)
    store.save(early)
    store.save(final)

    assert store.counts(final.run_id) == {"runs": 1, "phases": 5, "faults": 3, "probe_results": 3, **NO_TRAFFIC}
    assert store.get(final.run_id) == final


def test_saving_a_shorter_record_deletes_nothing(store: Store) -> None:
    store.save(make_record(steps=5, faults=2))
    store.save(make_record(steps=1, faults=0))

    assert store.counts("run-1") == {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}


def test_counts_are_per_run(store: Store) -> None:
    store.save(make_record("run-1"))
    store.save(make_record("run-2", faults=1))

    assert store.counts("run-2") == {"runs": 1, "phases": 5, "faults": 1, "probe_results": 3, **NO_TRAFFIC}
    assert store.counts("run-3") == {"runs": 0, "phases": 0, "faults": 0, "probe_results": 0, **NO_TRAFFIC}


def test_list_runs_filters_by_team_drill_and_verdict_newest_first(store: Store) -> None:
    runs = [
        make_record("a", team="payments", drill="db-outage", verdict=Verdict.RESILIENT, started_at=T0),
        make_record(
            "b", team="payments", drill="db-outage", verdict=Verdict.DEVIATED, started_at=T0 + timedelta(hours=1)
        ),
        make_record(
            "c", team="search", drill="cache-loss", verdict=Verdict.RESILIENT, started_at=T0 + timedelta(hours=2)
        ),
        make_record("d", team="payments", drill="cache-loss", verdict=None, started_at=T0 + timedelta(hours=3)),
    ]
    for run in runs:
        store.save(run)

    def ids(found: list[RunRecord]) -> list[str]:
        return [run.run_id for run in found]

    assert ids(store.list_runs()) == ["d", "c", "b", "a"]
    assert ids(store.list_runs(team="payments")) == ["d", "b", "a"]
    assert ids(store.list_runs(drill="cache-loss")) == ["d", "c"]
    assert ids(store.list_runs(verdict=Verdict.RESILIENT)) == ["c", "a"]
    assert ids(store.list_runs(team="payments", drill="db-outage", verdict=Verdict.DEVIATED)) == ["b"]
    assert ids(store.list_runs(limit=2)) == ["d", "c"]


def test_list_runs_accepts_a_verdict_as_text_and_rejects_an_unknown_one(store: Store) -> None:
    store.save(make_record(verdict=Verdict.RESILIENT))

    assert [run.run_id for run in store.list_runs(verdict="RESILIENT")] == ["run-1"]
    with pytest.raises(ValueError, match="unknown verdict 'RESILENT'"):
        store.list_runs(verdict="RESILENT")


def test_list_runs_returns_headers_without_steps(store: Store) -> None:
    record = make_record()
    store.save(record)

    [listed] = store.list_runs()

    assert listed == record.model_copy(update={"steps": [], "faults": [], "probes": []})


def test_sqlite_file_is_in_wal_mode(store: Store, tmp_path: Path) -> None:
    store.save(make_record())

    with sqlite3.connect(tmp_path / "results" / "gameday.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_record_run_activity_writes_the_rows(store: Store) -> None:
    record = make_record()

    await ActivityEnvironment().run(StoreActivities(store).record_run, record)

    assert store.counts(record.run_id) == {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}


async def test_in_memory_database_is_shared_by_the_activity_thread() -> None:
    store = Store("sqlite://")

    await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())

    assert store.get("run-1") == make_record()


async def test_unopenable_database_raises_retryable_store_unavailable_without_the_url(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("")
    url = f"sqlite:///{not_a_directory / 'nested' / 'gameday.db'}"
    store = Store(url)  # a worker must start even when the results database is down

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())

    error = caught.value
    assert error.type == "StoreUnavailable"
    assert not error.non_retryable
    assert isinstance(error.__cause__, DBAPIError)
    assert url not in str(error)
    assert str(not_a_directory) not in str(error)


def test_redact_url_hides_the_url_and_its_password() -> None:
    url = "postgresql+psycopg://gameday:hunter%402@db.internal:5432/results"

    redacted = redact_url(f"cannot reach {url}; password hunter@2 rejected", url)

    assert redacted == "cannot reach ***; password *** rejected"


def test_every_step_is_kept_in_order_a_phase_twice_and_steps_of_the_same_instant_included(store: Store) -> None:
    # Issue 11 item 15: keyed by (run, phase), the second pause overwrote the first, and steps that started in the
    # same instant read back sorted by name (inject before preflight).
    at = T0
    steps = [
        StepRecord(phase=Phase.PREFLIGHT, status=StepStatus.OK, started_at=at, ended_at=at, detail="steady"),
        StepRecord(phase=Phase.PAUSED, status=StepStatus.OK, started_at=at, ended_at=at, detail="first pause"),
        StepRecord(phase=Phase.INJECT, status=StepStatus.OK, started_at=at, ended_at=at, detail="1 fault applied"),
        StepRecord(phase=Phase.PAUSED, status=StepStatus.OK, started_at=at, ended_at=at, detail="second pause"),
    ]
    record = make_record(steps=0, faults=0, verdict=None).model_copy(update={"steps": steps[:2]})
    store.save(record)  # a progress snapshot, then the longer log: the later save extends the earlier one
    store.save(record.model_copy(update={"steps": steps}))

    assert store.counts(record.run_id)["phases"] == 4
    loaded = store.get(record.run_id)
    assert loaded is not None and loaded.steps == steps
    [detailed] = store.with_details(store.list_runs())
    assert detailed.steps == steps


def test_a_late_progress_snapshot_never_rolls_a_finished_run_back(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    final = make_record("run-late", verdict=Verdict.ABORTED)
    progress = make_record("run-late", verdict=None, steps=2, faults=1).model_copy(
        update={"faults": [final.faults[0].model_copy(update={"state": FaultState.APPLIED, "reverted_at": None})]}
    )
    store.save(final)
    store.save(progress)
    saved = store.get("run-late")
    assert saved is not None
    assert saved.verdict == Verdict.ABORTED
    assert saved.faults[0].state == final.faults[0].state
