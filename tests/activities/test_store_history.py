"""What ``gameday list --since/--until`` and ``gameday history`` read: ``Store.list_runs`` date filters and
``Store.with_details``, on SQLite and on a real PostgreSQL server alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gameday.activities import migrations
from gameday.activities.history import load_history
from gameday.activities.store import Store, make_engine
from gameday.model.records import Verdict
from tests.activities.test_store import make_record

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh store on each backend (PostgreSQL upgraded as a team would: ``gameday db upgrade`` first)."""
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'gameday.db'}")
    url: str = request.getfixturevalue("postgres_url")
    migrations.upgrade(make_engine(url))
    return Store(url)


@pytest.fixture
def week(any_store: Store) -> Store:
    """Runs at 23:59:59 on Oct 31, 00:00 on Nov 1, 12:00 on Nov 1, 00:00 on Nov 2 and 10:00 on Nov 3 (UTC)."""
    for run_id, at in (
        ("oct31-late", NOV_1 - timedelta(seconds=1)),
        ("nov1-midnight", NOV_1),
        ("nov1-noon", NOV_1 + timedelta(hours=12)),
        ("nov2-midnight", NOV_1 + timedelta(days=1)),
        ("nov3", NOV_1 + timedelta(days=2, hours=10)),
    ):
        any_store.save(make_record(run_id, started_at=at))
    return any_store


def ids(store: Store, *, since: datetime | None = None, until: datetime | None = None) -> list[str]:
    return [run.run_id for run in store.list_runs(since=since, until=until)]


def test_since_is_inclusive_and_until_exclusive(week: Store) -> None:
    assert ids(week, since=NOV_1) == ["nov3", "nov2-midnight", "nov1-noon", "nov1-midnight"]
    assert ids(week, until=NOV_1) == ["oct31-late"]
    assert ids(week, since=NOV_1, until=NOV_1 + timedelta(days=1)) == ["nov1-noon", "nov1-midnight"]


def test_bounds_in_another_zone_or_naive_are_compared_as_utc(week: Store) -> None:
    paris = timezone(timedelta(hours=1))
    # 13:00 in UTC+1 is 12:00 UTC: the noon run is included.
    assert ids(week, since=datetime(2026, 11, 1, 13, 0, tzinfo=paris), until=NOV_1 + timedelta(days=1)) == ["nov1-noon"]
    assert ids(week, since=datetime(2026, 11, 2, 0, 0)) == ["nov3", "nov2-midnight"]  # naive = UTC


def test_date_filters_combine_with_the_other_filters_and_the_limit(any_store: Store) -> None:
    any_store.save(make_record("a-old", team="payments", started_at=NOV_1 - timedelta(days=3)))
    any_store.save(make_record("a-new", team="payments", started_at=NOV_1 + timedelta(hours=1)))
    any_store.save(make_record("b-new", team="search", started_at=NOV_1 + timedelta(hours=2)))
    any_store.save(make_record("a-ok", team="payments", verdict=Verdict.RESILIENT, started_at=NOV_1))

    assert ids(any_store, since=NOV_1) == ["b-new", "a-new", "a-ok"]
    assert [r.run_id for r in any_store.list_runs(team="payments", since=NOV_1)] == ["a-new", "a-ok"]
    assert [r.run_id for r in any_store.list_runs(verdict="DEVIATED", since=NOV_1, limit=1)] == ["b-new"]


def test_with_details_fills_steps_faults_and_probes_of_each_header(week: Store) -> None:
    headers = week.list_runs(since=NOV_1 + timedelta(days=1))
    assert all(not run.faults and not run.probes for run in headers)

    detailed = week.with_details(headers)

    assert [run.run_id for run in detailed] == ["nov3", "nov2-midnight"]
    for run in detailed:
        assert run == week.get(run.run_id)  # the records carry no traffic: nothing left out
    assert week.with_details([]) == []


def test_load_history_reads_the_drills_last_runs_oldest_first(week: Store) -> None:
    week.save(make_record("other-drill", drill="search-outage", started_at=NOV_1))

    found = load_history(week, "checkout-db-outage", limit=3)

    assert [e.run_id for e in found.entries] == ["nov1-noon", "nov2-midnight", "nov3"]
    assert [e.score for e in found.entries] == [50, 50, 50]  # DEVIATED, its one observe probe failed
    assert found.summary.runs == 3
