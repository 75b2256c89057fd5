"""Console page render time with 10,000 runs in the results database (issue 18; target: list page p95 < 300 ms).

What runs: a SQLite results database filled with ``--runs`` run headers (one fault each, 40 drills, 8 teams,
every verdict, a year of start times), written with ``Store`` through its own row mapping in one transaction;
then ``gameday console`` as a subprocess on it (read-only; Temporal is not needed by these pages), and
``--requests`` sequential GETs of each page over loopback with httpx, timed from request to the last byte:

* ``/runs``: the newest 100 runs (the default list page);
* ``/runs?verdict=DEVIATED&since=90d``: a filtered list;
* ``/runs?drill=...``: a drill's runs with its resilience trend (50 runs scored);
* ``/runs/RUN_ID``: one run's page (the report itself loads in its iframe: ``/runs/RUN_ID/report``, timed too).

    .venv/bin/python bench/console_render.py [--runs 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _drills import SCRIPTS, machine, percentile, stats_header, stats_line
from sqlmodel import Session

from gameday.activities.store import Store, _run_row
from gameday.activities.tables import FaultRow
from gameday.model.records import FaultRecord, FaultState, Phase, RunRecord, Verdict
from gameday.worker.devserver import free_port

TARGET = 0.300


def fill(database: Path, count: int) -> str:
    """``count`` finished runs; returns one run id of the busiest drill."""
    store = Store(f"sqlite:///{database}")
    now = datetime.now(UTC)
    rng = random.Random(18)
    verdicts = list(Verdict)
    started = time.perf_counter()
    records = []
    for n in range(count):
        begun = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        record = RunRecord(
            run_id=f"drill-bench-{n:06d}",
            drill_name=f"drill-{n % 40:02d}",
            team=f"team-{n % 8}",
            phase=Phase.DONE,
            verdict=rng.choice(verdicts),
            started_at=begun,
            ended_at=begun + timedelta(seconds=30),
            time_to_recovery=rng.uniform(0.5, 20),
            summary="bench",
            faults=[
                FaultRecord(
                    index=0,
                    label="svc: pause",
                    target="svc",
                    kind="process",
                    action="pause",
                    state=FaultState.REVERTED,
                    applied_at=begun,
                    reverted_at=begun + timedelta(seconds=20),
                )
            ],
        )
        records.append(record)
    store.save(records[0])  # the schema, as gameday makes it (migrations); then the rest in one transaction
    with Session(store.engine) as session, session.begin():
        for record in records[1:]:
            session.add(_run_row(record, updated_at=now))
        session.flush()
        for record in records[1:]:
            session.add(FaultRow.model_validate(record.faults[0].model_dump(), update={"run_id": record.run_id}))
    print(f"  filled {count} runs in {time.perf_counter() - started:.1f}s")
    return "drill-bench-000000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-console-") as tmp:
        database = Path(tmp) / "results.db"
        one = fill(database, args.runs)
        port = free_port()
        env = {
            **os.environ,
            "GAMEDAY_DATABASE_URL": f"sqlite:///{database}",
            "GAMEDAY_DATA_DIR": tmp,
            "GAMEDAY_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing there: these pages do not ask it
        }
        console = subprocess.Popen(
            [str(SCRIPTS / "gameday"), "console", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            with httpx.Client(base_url=base, timeout=30) as http:
                while True:
                    try:
                        http.get("/static/console.css")
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                pages = {
                    "/runs (newest 100)": "/runs",
                    "/runs?verdict=DEVIATED&since=90d": "/runs?verdict=DEVIATED&since=90d",
                    "/runs?drill=drill-00 (+ trend)": "/runs?drill=drill-00",
                    "/runs/RUN_ID (+ trend)": f"/runs/{one}",
                    "/runs/RUN_ID/report": f"/runs/{one}/report",
                }
                results: dict[str, list[float]] = {}
                for label, path in pages.items():
                    assert http.get(path).status_code == 200, path  # warm: templates compiled, connection pooled
                    times = []
                    for _ in range(args.requests):
                        began = time.perf_counter()
                        answer = http.get(path)
                        answer.read()
                        times.append(time.perf_counter() - began)
                        assert answer.status_code == 200
                    results[label] = times
        finally:
            console.terminate()
            console.wait(timeout=10)
    print()
    print(f"== console render: {args.runs} runs in SQLite, {args.requests} sequential GETs per page over loopback ==")
    for line in machine():
        print("  " + line)
    print(stats_header("gameday console (uvicorn, one process)"))
    for label, times in results.items():
        print(stats_line(label, times))
    p95 = percentile(results["/runs (newest 100)"], 95)
    print(f"  target list page p95 < {TARGET * 1000:.0f} ms: {'met' if p95 < TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
