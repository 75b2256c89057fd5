"""A host fault's load dies with its worker: SIGKILLed mid-fault, the load is gone within 2 s (no process left, no
connection held; a ``disk_fill``/``io`` file is all that stays), and the drill's rollback on the next worker removes
that file and records what was held."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.faults import host
from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, Verdict
from tests.harness import WorkerProcesses, finish, running_worker, start_drill, wait_phase, wait_until_async
from tests.host_support import PROBE_USER, connect_error, small_postgres
from tests.pg_support import PostgresServer, find_bin_dir

pytestmark = pytest.mark.integration

GONE_WITHIN = 2.0
"""Seconds from the worker's SIGKILL to its load gone."""


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with small_postgres() as server:
        yield server


def _fault(action: str, fill: Path, pg: PostgresServer) -> str:
    return {
        "cpu": "{target: box, action: cpu, cores: 1, load: 20%}",
        "memory": "{target: box, action: memory, size: 64MiB}",
        "disk_fill": f'{{target: box, action: disk_fill, path: "{fill}", size: 8MiB}}',
        "connections": (
            f'{{target: box, action: connections, address: "127.0.0.1:{pg.port}", count: 20, postgres_user: postgres}}'
        ),
        "io": f'{{target: box, action: io, path: "{fill}", rate: 1MiB/s, size: 1MiB}}',
    }[action]


def _dead(pid: int) -> bool:
    """Gone, or a zombie (dead, holding nothing, waiting for whoever adopted it to reap it: PID 1 here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


ACTIONS = ["cpu", "memory", "disk_fill", "connections", "io"]


async def test_worker_killed_mid_fault_takes_every_load_with_it_and_the_next_worker_records_them(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg: PostgresServer
) -> None:
    """One drill holding all five actions at once (each locks its own resource): one SIGKILL, five loads checked."""
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(tmp_path / "gameday-data"))  # the workers' (one host, one data dir)
    fill = tmp_path / "fill"
    fill.mkdir()
    monkeypatch.setenv("GAMEDAY_HOST_FILL_ROOTS", str(fill))
    faults = "\n".join(f"  - {_fault(action, fill, pg)}" for action in ACTIONS)
    drill = f"""
name: host-crash
targets:
  box: {{host: {{}}}}
hypothesis:
  - name: shell answers
    command: {{run: "true", timeout: 5s}}
    mode: edge
faults:
{faults}
observe: {{duration: 4s, interval: 250ms}}
recovery: {{within: 20s, interval: 100ms}}
"""
    workers = WorkerProcesses.on_new_queue(client, "host-crash", tmp_path)
    queue = workers.queue
    first = workers.start()
    try:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.OBSERVE)
        marks = {action: host.marker(handle.id, i) for i, action in enumerate(ACTIONS)}
        pids = {action: host.load_pids(mark) for action, mark in marks.items()}
        assert all(pids.values()), f"every load runs while its fault holds: {pids}"
        assert "too many clients" in (connect_error(pg) or "")
        workers.kill(first)
        killed = time.monotonic()
        await wait_until_async(
            lambda: not any(host.load_pids(mark) for mark in marks.values()),
            what="every load to die with its worker",
            within=5,
        )
        await wait_until_async(lambda: connect_error(pg) is None, what="the slots free again", within=5)
        gone_after = time.monotonic() - killed
        assert gone_after <= GONE_WITHIN, f"loads gone {gone_after:.2f}s after their worker's SIGKILL"
        assert all(_dead(pid) for found in pids.values() for pid in found)
        # What a SIGKILLed worker leaves: the files, named by run and fault, for the next worker's rollback.
        assert sorted(p.name for p in fill.iterdir()) == [
            f".gameday-disk_fill-{host.slug(handle.id, 2)}",
            f".gameday-io-{host.slug(handle.id, 4)}",
        ]

        workers.start()
        record = await handle.result()
    finally:
        workers.stop_all()

    assert record.verdict == Verdict.RESILIENT, record.summary
    for action, fault in zip(ACTIONS, record.faults, strict=True):
        assert fault.state == FaultState.REVERTED, (action, fault)
        assert "the load had already ended" in fault.output and "held:" in fault.output, (action, fault.output)
        assert any(key.startswith("held_") for key in fault.changed), (action, fault.changed)
    assert list(fill.iterdir()) == [], "the next worker's rollback removed the files the loads left"
    assert not any(host.load_pids(mark) for mark in marks.values())


async def test_a_probe_of_a_client_of_the_database_fails_under_the_connections_fault_and_recovers(
    client: Client, store: Store, pg: PostgresServer
) -> None:
    """A client of the database (``psql`` as a role without password, what a service's pool does on each new
    connection) fails while the fault holds every slot, and connects again once the rollback let them go."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    psql = f"{bin_dir / 'psql'} -h 127.0.0.1 -p {pg.port} -U {PROBE_USER} -d postgres -tAc 'select 1'"
    drill = f"""
name: host-pool
targets:
  db-host: {{host: {{}}}}
hypothesis:
  - name: db takes a new client
    command: {{run: "{psql}", timeout: 5s}}
faults:
  - {{target: db-host, action: connections, address: "127.0.0.1:{pg.port}", count: 20, postgres_user: postgres}}
observe: {{duration: 2s, interval: 200ms}}
recovery: {{within: 20s, interval: 100ms}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "host_pool", within=90)
    assert record.verdict == Verdict.DEVIATED, record.summary
    during = [p for p in record.probes if p.phase == Phase.OBSERVE]
    after = [p for p in record.probes if p.phase == Phase.VERIFY]
    assert during and all(p.failures > 0 for p in during), during
    assert any("too many clients" in problem for p in during for problem in p.problems), during
    assert after and all(p.ok for p in after), after
    (fault,) = record.faults
    assert fault.state == FaultState.REVERTED and fault.changed["held_connections_held"] == "20", fault
    assert connect_error(pg) is None


async def test_a_terminated_drill_s_load_is_stopped_by_the_worker_that_holds_it(
    client: Client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Terminated, a drill runs no rollback: the worker holding its load sees the workflow closed and stops it."""
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(tmp_path / "gameday-data"))
    drill = """
name: host-terminated
targets:
  box: {host: {}}
hypothesis:
  - name: shell answers
    command: {run: "true", timeout: 5s}
    mode: edge
faults:
  - {target: box, action: cpu, cores: 0.2, load: 50%}
observe: {duration: 5m, interval: 1s}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.OBSERVE)
        mark = host.marker(handle.id, 0)
        assert host.load_pids(mark)
        await handle.terminate("test: no rollback")
        await wait_until_async(lambda: not host.load_pids(mark), what="the load of a terminated drill", within=10)
