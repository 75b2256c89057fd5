"""A run's traffic measurements in the results database, on SQLite and on a real PostgreSQL: the summary reads
back exactly, saving again duplicates nothing, a later summary replaces an earlier one (never the reverse), and
the windows are plain rows a person can query."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from gameday.activities import migrations
from gameday.activities.store import Store, StoreActivities, make_engine
from gameday.activities.traffic.send import Outcome
from gameday.activities.traffic.windows import Window
from gameday.model.records import RunRecord
from gameday.model.traffic import Gap, Timeline, TrafficSummary, WindowStats
from gameday.report.run import render_json
from tests.activities.test_store import T0, make_record

RATE = 10
"""Requests per second of the test traffic: small, every figure below is countable by hand."""
SCHEDULE = [("before", 0, 5), ("during pause db", 5, 12), ("rollback", 12, 13), ("after", 13, 20)]
"""Phase name, first second, end second."""
END = SCHEDULE[-1][2]
GAP = Gap(start=8.0, end=10.0)
"""Seconds 8 and 9 sent nothing: the worker sending the traffic was lost and another one resumed it."""


def _second(second: int, phase: str) -> Window:
    """One second of traffic: all fast answers, except under fault two 503s and one timeout."""
    window = Window(f"second {second}", float(second))
    for i in range(RATE):
        window.sent += 1
        window.in_flight += 1  # as the engine counts a request at its send time
        if phase.startswith("during") and i < 3:
            window.record(Outcome.TIMEOUT if i == 2 else Outcome.STATUS_5XX, 2.0 if i == 2 else 0.4)
        else:
            window.record(Outcome.OK, 0.010 + 0.002 * i)
    window.late = 1 if phase == "rollback" else 0
    return window


def make_traffic(*, until: int = END, started_at_offset: float = 3.0) -> TrafficSummary:
    """What the traffic of a 20 s drill measured: finished, or a snapshot ``until`` seconds in.

    Made by the engine's own windows, so the histograms are real encoded HDR histograms. A snapshot has its
    current phase open (no end) and its last second still in flight (in ``open_seconds``, not the timeline).
    """
    finished = until >= END
    seconds = {
        s: _second(s, name)
        for name, first, end in SCHEDULE
        for s in range(first, min(end, until))
        if not GAP.start <= s < GAP.end
    }
    in_flight = set() if finished else {max(seconds)}
    phases: list[Window] = []
    for name, first, end in SCHEDULE:
        if first >= until:
            break
        phase = Window.merged(name, [seconds[s] for s in range(first, min(end, until)) if s in seconds])
        phase.start, phase.end = float(first), float(end) if end <= until else None
        phases.append(phase)
    total = Window.merged("total", phases)
    total.start, total.end = 0.0, phases[-1].end
    return TrafficSummary(
        started_at=T0 + timedelta(seconds=started_at_offset),
        rate=float(RATE),
        elapsed=float(END) if finished else until + 0.25,
        phases=[p.stats() for p in phases],
        total=total.stats(),
        timeline=Timeline.of([w.second_stats(s) for s, w in seconds.items() if s not in in_flight]),
        open_seconds=[seconds[s].stats() for s in sorted(in_flight)],
        gaps=[GAP] if until > GAP.start else [],
        finished=finished,
    )


def with_traffic(traffic: TrafficSummary | None, run_id: str = "run-1", *, final: bool = True) -> RunRecord:
    record = make_record(run_id) if final else make_record(run_id, verdict=None, steps=3, faults=1)
    return record.model_copy(update={"traffic": traffic})


def counts(windows: int, runs: int = 1) -> dict[str, int]:
    return {
        "runs": 1,
        "phases": 5,
        "faults": 2,
        "probe_results": 3,
        "traffic_runs": runs,
        "traffic_windows": windows,
        "observations": 0,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store at head on a new SQLite file, or on a new PostgreSQL database upgraded as a team would."""
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'gameday.db'}")
    url: str = request.getfixturevalue("postgres_url")
    migrations.upgrade(make_engine(url))
    return Store(url)


# --- reading back -------------------------------------------------------------------------------------------


def test_the_test_traffic_is_what_the_engine_would_report() -> None:
    traffic = make_traffic()

    assert [w.name for w in traffic.phases] == ["before", "during pause db", "rollback", "after"]
    assert traffic.total.sent == sum(w.sent for w in traffic.phases) == 18 * RATE
    assert traffic.total.status_5xx == 2 * 5 and traffic.total.timeouts == 5
    assert traffic.total.latency is not None and traffic.total.latency.max >= 2.0
    assert all(w.histogram for w in traffic.phases)
    assert len(traffic.timeline.second) == 18


@pytest.mark.parametrize("until", [END, 11], ids=["finished", "snapshot"])
def test_a_run_with_traffic_reads_back_equal(store: Store, until: int) -> None:
    traffic = make_traffic(until=until)
    record = with_traffic(traffic, final=traffic.finished)

    store.save(record)
    loaded = store.get(record.run_id)

    assert loaded is not None
    assert loaded.traffic == traffic
    assert loaded == record
    assert render_json(loaded) == render_json(record)
    if not traffic.finished:
        assert loaded.traffic.phases[-1].end is None and loaded.traffic.open_seconds


def test_a_window_in_which_nothing_completed_reads_back_without_latency(store: Store) -> None:
    traffic = make_traffic()
    drained = WindowStats(name="drain", start=20.0, end=20.5)
    record = with_traffic(traffic.model_copy(update={"phases": [*traffic.phases, drained]}))

    store.save(record)

    assert store.get(record.run_id) == record


def test_counts_beyond_32_bits_are_stored(store: Store) -> None:
    # Six hours at 100k/s: an INTEGER column would overflow and the record could never be written.
    traffic = make_traffic()
    total = traffic.total.model_copy(update={"sent": 3_000_000_000, "ok": 2_999_999_000})
    record = with_traffic(traffic.model_copy(update={"total": total}))

    store.save(record)

    assert store.get(record.run_id) == record


# --- saving again ---------------------------------------------------------------------------------------------


def test_saving_the_same_record_three_times_keeps_one_row_per_window(store: Store) -> None:
    record = with_traffic(make_traffic())
    for _ in range(3):
        store.save(record)

    assert store.counts(record.run_id) == counts(windows=4 + 1)  # four phases and the total
    assert store.get(record.run_id) == record


def test_a_snapshot_then_the_final_record_leaves_exactly_the_final_figures(store: Store) -> None:
    snapshot = with_traffic(make_traffic(until=6), final=False)
    final = with_traffic(make_traffic())
    store.save(snapshot)
    assert store.counts("run-1")["traffic_windows"] == 2 + 1

    store.save(final)

    assert store.counts("run-1") == counts(windows=4 + 1)
    loaded = store.get("run-1")
    assert loaded is not None and loaded.traffic is not None
    assert loaded.traffic.open_seconds == []  # the snapshot's in-flight second is not left behind
    assert loaded == final


def test_an_older_snapshot_saved_late_does_not_replace_newer_figures(store: Store) -> None:
    # Both without a verdict, so the run-level guard does not apply: the traffic must hold its own line.
    newer = with_traffic(make_traffic(until=15), final=False)
    older = with_traffic(make_traffic(until=6), final=False)
    store.save(newer)

    store.save(older)

    loaded = store.get("run-1")
    assert loaded is not None
    assert loaded.traffic == newer.traffic


def test_a_finished_summary_is_never_replaced_by_a_snapshot(store: Store) -> None:
    final = make_traffic()
    # A snapshot whose clock says it reaches further (a worker's clock ahead) is still only a snapshot.
    snapshot = make_traffic(until=15, started_at_offset=30.0)
    store.save(with_traffic(final, final=False))

    store.save(with_traffic(snapshot, final=False))

    loaded = store.get("run-1")
    assert loaded is not None
    assert loaded.traffic == final


def test_a_record_without_traffic_keeps_the_stored_traffic(store: Store) -> None:
    traffic = make_traffic()
    store.save(with_traffic(traffic))

    store.save(with_traffic(None))

    loaded = store.get("run-1")
    assert loaded is not None
    assert loaded.traffic == traffic
    assert store.counts("run-1") == counts(windows=4 + 1)


def test_a_newer_summary_with_fewer_windows_leaves_no_window_of_the_older_one(store: Store) -> None:
    # Traffic started again from scratch (a new start, two windows so far) replaces the first run's figures.
    first = make_traffic(until=15)
    again = make_traffic(until=6, started_at_offset=40.0)
    store.save(with_traffic(first, final=False))

    store.save(with_traffic(again, final=False))

    loaded = store.get("run-1")
    assert loaded is not None
    assert loaded.traffic == again
    assert store.counts("run-1")["traffic_windows"] == 2 + 1


def test_windows_with_the_same_name_are_kept_apart(store: Store) -> None:
    # Window names come from the drill (fault labels): one marked twice must not swallow the other.
    traffic = make_traffic()
    during = traffic.phases[1]
    repeated = [*traffic.phases[:3], during.model_copy(update={"start": 13.0, "end": 15.0}), traffic.phases[3]]
    record = with_traffic(traffic.model_copy(update={"phases": repeated}))

    store.save(record)

    assert store.get("run-1") == record
    assert store.counts("run-1")["traffic_windows"] == 5 + 1


def test_list_runs_leaves_the_traffic_out_like_the_other_details(store: Store) -> None:
    store.save(with_traffic(make_traffic()))

    [listed] = store.list_runs()

    assert listed.traffic is None


async def test_record_run_activity_writes_the_traffic(store: Store) -> None:
    record = with_traffic(make_traffic())

    await ActivityEnvironment().run(StoreActivities(store).record_run, record)
    await ActivityEnvironment().run(StoreActivities(store).record_run, record)  # Temporal's retry

    assert store.counts(record.run_id) == counts(windows=4 + 1)
    assert store.get(record.run_id) == record


# --- plain SQL --------------------------------------------------------------------------------------------------


def test_the_windows_are_rows_a_person_can_query_and_their_histograms_merge(store: Store) -> None:
    traffic = make_traffic()
    store.save(with_traffic(traffic))

    with store.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT name, sent, status_5xx, timeouts, latency_p99, histogram FROM traffic_windows"
                " WHERE run_id = 'run-1' AND kind = 'phase' ORDER BY position"
            )
        ).all()
        total = connection.execute(
            text("SELECT name, sent FROM traffic_windows WHERE run_id = 'run-1' AND kind = 'total'")
        ).one()
        timeline = connection.execute(text("SELECT timeline FROM traffic_runs WHERE run_id = 'run-1'")).scalar_one()

    assert [(name, sent, s5xx, timeouts) for name, sent, s5xx, timeouts, _p99, _h in rows] == [
        ("before", 50, 0, 0),
        ("during pause db", 50, 10, 5),
        ("rollback", 10, 0, 0),
        ("after", 70, 0, 0),
    ]
    assert rows[1][4] >= 2.0  # p99 under fault: the timeouts, in seconds
    assert tuple(total) == ("total", 180)
    # The columnar timeline: JSON text from SQLite, already decoded by PostgreSQL's driver.
    columns = json.loads(timeline) if isinstance(timeline, str) else timeline
    assert columns["second"][:3] == [0, 1, 2] and columns["sent"][:3] == [RATE] * 3
    merged = HdrHistogram.decode(rows[0][5])
    for _name, _sent, _s5xx, _timeouts, _p99, histogram in rows[1:]:
        merged.add(HdrHistogram.decode(histogram))
    assert merged.get_total_count() == traffic.total.completed
