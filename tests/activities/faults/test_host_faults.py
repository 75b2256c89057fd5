"""Host resource faults with real loads: CPU time from /proc, resident memory, bytes on disk, a real PostgreSQL's
connection slots; every revert leaves nothing (no process, no file, no connection), and is idempotent.

The activities run through the worker's boundary (``capture_target``, ``apply_fault``, ``revert_fault`` in an
``ActivityEnvironment``), in this process: the loads are its children, as they are a worker's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults import host
from gameday.activities.faults.activities import apply_fault, capture_target, revert_fault
from gameday.model.drill import Fault, Target
from gameday.model.kinds.host import describe_fault
from gameday.model.records import FaultInput, FaultRecord, FaultState
from tests.harness import wait_until_async
from tests.host_support import (
    connect_error,
    group_cpu_seconds,
    kill_own_loads,
    rss_bytes,
    schedstat_seconds,
    small_postgres,
)
from tests.pg_support import PostgresServer

MiB = 1024**2


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    where = tmp_path / "gameday-data"
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(where))
    monkeypatch.setenv("GAMEDAY_HOST_FILL_ROOTS", str(tmp_path / "fill"))
    (tmp_path / "fill").mkdir()
    yield where
    kill_own_loads()  # a test that failed before its revert leaves nothing running either


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with small_postgres() as server:
        yield server


def host_input(fault: dict[str, Any], run_id: str = "host-test", index: int = 0) -> FaultInput:
    target = Target.model_validate({"host": {}})
    model = TypeAdapter(Fault).validate_python({"target": "box", **fault})
    record = FaultRecord(index=index, label=model.label, target="box", kind="host", action=model.action_name)
    return FaultInput(run_id=run_id, index=index, target_name="box", target=target, fault=model, record=record)


async def applied(env: ActivityEnvironment, inp: FaultInput) -> FaultInput:
    """Capture, apply: the input a revert gets, with what the apply recorded."""
    state = await env.run(capture_target, inp)
    inp = inp.model_copy(update={"before": state.facts})
    record = await env.run(apply_fault, inp)
    assert record.state == FaultState.APPLIED, record
    return inp.model_copy(update={"record": record})


def load_of(inp: FaultInput) -> list[int]:
    return host.load_pids(host.marker(inp.run_id, inp.index))


async def test_cpu_one_core_for_five_seconds_burns_five_cpu_seconds_and_nothing_after(
    activity_env: ActivityEnvironment,
) -> None:
    inp = await applied(activity_env, host_input({"action": "cpu", "cores": 1, "load": "100%"}))
    pids = load_of(inp)
    assert len(pids) == 2, "the supervisor and one burner"
    start, (_, waited_before) = group_cpu_seconds(pids), schedstat_seconds(pids)
    await asyncio.sleep(5)
    burnt, waited = group_cpu_seconds(pids) - start, schedstat_seconds(pids)[1] - waited_before
    # The load asks for one core for 5 s: it burns 5 CPU-s (/proc/PID/stat), less only by the time the host's
    # scheduler kept it waiting for a core (/proc/PID/schedstat), on a machine busier than its cores.
    assert 5 * 0.85 <= burnt + waited <= 5 * 1.15, f"{burnt:.2f} CPU-s burnt, {waited:.2f} s waiting, in 5 s"
    reverted = await activity_env.run(revert_fault, inp)
    assert reverted.state == FaultState.REVERTED
    assert load_of(inp) == [] and all(not Path(f"/proc/{pid}").exists() for pid in pids)
    tick = 1 / os.sysconf("SC_CLK_TCK")  # /proc counts clock ticks, the load's record its children's rusage
    assert float(reverted.changed["held_cpu_seconds"]) >= burnt - tick, reverted.changed
    assert "CPU-s burnt" in reverted.output


async def test_memory_is_resident_while_held_and_freed_by_the_revert_which_needs_no_record(
    activity_env: ActivityEnvironment,
) -> None:
    inp = await applied(activity_env, host_input({"action": "memory", "size": "256MiB"}))
    (holder,) = load_of(inp)
    assert str(holder) == inp.record.changed["pid"]
    assert rss_bytes(holder) >= 0.95 * 256 * MiB
    # The apply's record never came back (a crash mid-apply): the revert finds the load by its marker.
    lost = inp.model_copy(update={"record": inp.record.model_copy(update={"changed": {}})})
    reverted = await activity_env.run(revert_fault, lost)
    assert load_of(inp) == [] and not Path(f"/proc/{holder}").exists()
    assert int(reverted.changed["held_rss_bytes"]) >= 0.95 * 256 * MiB
    again = await activity_env.run(revert_fault, inp)
    assert again.state == FaultState.REVERTED and again.output == "no load was running"


async def test_disk_fill_writes_its_bytes_and_the_revert_removes_exactly_them(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    fill = tmp_path / "fill"
    (fill / "keep.txt").write_text("not ours")
    inp = await applied(activity_env, host_input({"action": "disk_fill", "path": str(fill), "size": "100MiB"}))
    written = Path(inp.record.changed["file"])
    assert written.parent == fill and written.stat().st_blocks * 512 >= 100 * MiB
    reverted = await activity_env.run(revert_fault, inp)
    assert sorted(p.name for p in fill.iterdir()) == ["keep.txt"]
    assert int(reverted.changed["held_bytes"]) >= 100 * MiB and load_of(inp) == []
    await activity_env.run(revert_fault, inp)  # idempotent
    assert sorted(p.name for p in fill.iterdir()) == ["keep.txt"]


LEAVE_FREE = """
import asyncio, json, os, sys
sys.path.insert(0, {root!r})
from tests.activities.faults.test_host_faults import host_input
from gameday.activities.faults import host

async def main():
    inp = host_input({{"action": "disk_fill", "path": {mnt!r}, "leave_free": "16MiB"}})
    free = lambda: os.statvfs({mnt!r}).f_bavail * os.statvfs({mnt!r}).f_frsize
    record = await host.apply(inp)
    during = free()
    await host.revert(inp.model_copy(update={{"record": record}}))
    print(json.dumps({{"during": during, "after": free(), "left": os.listdir({mnt!r})}}))

asyncio.run(main())
"""


def on_small_tmpfs(tmp_path: Path, script: str, *, fill_root: bool = False) -> dict:
    """``script`` (formatted with ``root`` and ``mnt``) run by this Python in a mount namespace of its own, with a
    64 MiB tmpfs mounted at ``mnt`` (``tmp_path/fill/small``; with ``fill_root``, the worker's only fill root);
    the JSON of its last line."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a tmpfs in a mount namespace of its own")
    mnt = tmp_path / "fill" / "small"
    mnt.mkdir()
    env = {**os.environ, "GAMEDAY_HOST_FILL_ROOTS": str(mnt)} if fill_root else {**os.environ}
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs -o size=64m gameday-test "{mnt}" && exec "{sys.executable}" -c "$0"',
         script.format(root=str(Path(__file__).parents[3]), mnt=str(mnt))],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_disk_fill_leave_free_leaves_that_much_on_a_small_tmpfs(tmp_path: Path) -> None:
    seen = on_small_tmpfs(tmp_path, LEAVE_FREE)
    assert 16 * MiB <= seen["during"] <= 17 * MiB, seen
    assert seen["after"] >= 63 * MiB and seen["left"] == [], seen


async def test_the_worker_refuses_what_is_over_its_limits_and_starts_nothing(
    activity_env: ActivityEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.setenv("GAMEDAY_HOST_MAX_MEMORY", "64MiB")
    monkeypatch.setenv("GAMEDAY_HOST_MAX_CONNECTIONS", "5")
    cases = {
        "outside this worker's GAMEDAY_HOST_FILL_ROOTS": {"action": "disk_fill", "path": str(outside), "size": "1MiB"},
        "above this worker's cap of 67108864": {"action": "memory", "size": "65MiB"},
        "above this worker's cap of 5": {"action": "connections", "address": "127.0.0.1:9", "count": 6},
        "inside gameday's data directory": {"action": "io", "path": str(tmp_path / "fill" / "data"), "rate": "1MiB/s"},
    }
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(tmp_path / "fill" / "data"))
    (tmp_path / "fill" / "data").mkdir()
    for i, (message, fault) in enumerate(cases.items()):
        inp = host_input(fault, index=i)
        with pytest.raises(ApplicationError, match="FaultCaptureError") as caught:
            await activity_env.run(capture_target, inp)
        assert message in str(caught.value)
        with pytest.raises(ApplicationError, match="not applied") as caught:
            await activity_env.run(apply_fault, inp)
        assert message in str(caught.value) and load_of(inp) == []
    assert sorted(p.name for p in outside.iterdir()) == []


async def test_connections_exhaust_a_real_postgresql_and_the_revert_gives_the_slots_back(
    activity_env: ActivityEnvironment, pg: PostgresServer
) -> None:
    assert connect_error(pg) is None
    fault = {"action": "connections", "address": f"127.0.0.1:{pg.port}", "count": 20, "postgres_user": "postgres"}
    inp = await applied(activity_env, host_input(fault))
    # The load holds once its 20 connections are open and greeted; the server counts each when its backend has
    # started, so a client racing those backends may still get in once.
    await wait_until_async(lambda: "too many clients" in (connect_error(pg) or ""), what="a new client refused")
    reverted = await activity_env.run(revert_fault, inp)
    assert reverted.changed["held_connections_held"] == "20", reverted.changed
    await wait_until_async(lambda: connect_error(pg) is None, what="a new client accepted again", within=5)


async def test_io_writes_at_its_rate_into_one_file_which_the_revert_removes(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    fill = tmp_path / "fill"
    inp = await applied(activity_env, host_input({"action": "io", "path": str(fill), "rate": "8MiB/s", "size": "4MiB"}))
    written = Path(inp.record.changed["file"])
    await wait_until_async(
        lambda: host._read_status(inp.run_id, inp.index).get("bytes", 0) >= 4 * MiB, what="4 MiB written", within=10
    )
    assert written.stat().st_size == 4 * MiB, "wrapped at its size"
    reverted = await activity_env.run(revert_fault, inp)
    assert int(reverted.changed["held_bytes"]) >= 4 * MiB
    assert list(fill.iterdir()) == [] and load_of(inp) == []


async def test_two_drills_never_load_one_resource_of_a_host_at_once(activity_env: ActivityEnvironment) -> None:
    first = await applied(activity_env, host_input({"action": "memory", "size": "1MiB"}, run_id="first"))
    second = host_input({"action": "memory", "size": "1MiB"}, run_id="second")
    with pytest.raises(ApplicationError, match="not applied: memory on this host is loaded by another drill"):
        await activity_env.run(apply_fault, second)
    other = await applied(activity_env, host_input({"action": "cpu", "cores": 0.1}, run_id="second", index=1))
    await activity_env.run(revert_fault, first)
    await activity_env.run(revert_fault, other)
    again = await applied(activity_env, second)
    await activity_env.run(revert_fault, again)
    assert load_of(first) == load_of(second) == []


def test_a_dry_run_says_what_each_action_does_and_undoes() -> None:
    lines = {
        a: describe_fault(host_input(f).fault)
        for a, f in {
            "cpu": {"action": "cpu", "cores": 2, "load": "25%"},
            "memory": {"action": "memory", "size": "10%"},
        }.items()
    }
    assert lines["cpu"][0] == "burn 2 core(s) at 25% in a load process group"
    assert "GAMEDAY_HOST_MAX_MEMORY" in lines["memory"][0] and "freed" in lines["memory"][1]


def test_a_worker_policy_bounds_where_connections_go_and_where_files_are_written(tmp_path: Path) -> None:
    from gameday.activities.policy import PolicyRules, WorkerPolicy

    policy = WorkerPolicy(rules=PolicyRules.model_validate({"hosts": ["10.0.0.0/8"], "paths": [str(tmp_path)]}))
    conns = host_input({"action": "connections", "address": "127.0.0.1:5432", "count": 1}).fault
    fill = host_input({"action": "disk_fill", "path": "/var/tmp", "size": "1MiB"}).fault
    inside = host_input({"action": "io", "path": str(tmp_path), "rate": "1MiB/s"}).fault
    assert [r.field for r in policy.fault_refusals(0, conns)] == ["faults[0].address"]
    assert [r.field for r in policy.fault_refusals(1, fill)] == ["faults[1].path"]
    assert policy.fault_refusals(2, inside) == []


async def test_a_lost_lease_ends_the_load_through_the_same_revert() -> None:
    from gameday.activities.fault_lease import FaultLease

    lease = FaultLease()
    inp = host_input({"action": "cpu", "cores": 0.1}, run_id="lease-lost")
    async with lease.applying(inp) as held:
        record = await host.apply(inp)
        held.input = inp.model_copy(update={"record": record})
    assert load_of(inp)
    await lease._expire(time.monotonic() - 3600)  # Temporal unanswered for an hour: past any lease
    assert load_of(inp) == []
    assert [h.lease_reverted_at is not None for h in lease.held()] == [True]


# --- review of issue 17 (rev17): what an adversary tries ------------------------------------------------------


async def test_an_apply_cancelled_before_its_load_holds_leaves_no_load_and_no_lock(
    activity_env: ActivityEnvironment,
) -> None:
    import socket

    # A server that never accepts: its backlog fills, and the load's next connect waits (5 s) before it holds.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        port = server.getsockname()[1]
        inp = host_input({"action": "connections", "address": f"127.0.0.1:{port}", "count": 8}, run_id="cancelled")
        applying = asyncio.create_task(activity_env.run(apply_fault, inp))
        await wait_until_async(lambda: load_of(inp) != [], what="the load started")
        activity_env.cancel()  # the drill stopped or terminated mid-apply (its heartbeat answers "cancelled")
        with pytest.raises(BaseException):  # noqa: B017 - cancelled, however the SDK words it
            await applying
        # Nothing to wait for from a rollback (a terminated drill has none): the interrupted apply undid itself.
        assert load_of(inp) == []
        assert not host._lock_file(host.resource_key(inp.fault)).exists()


async def test_an_io_load_faster_than_its_disk_still_ends_itself_at_its_deadline(
    activity_env: ActivityEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMEDAY_HOST_MAX_HOLD", "1s")
    fault = {"action": "io", "path": str(tmp_path / "fill"), "rate": "1000000GiB/s", "size": "1MiB"}
    inp = await applied(activity_env, host_input(fault, run_id="io-deadline"))
    # Nobody reverts it: the load must end itself (its promise), however far behind its rate it is.
    await wait_until_async(lambda: load_of(inp) == [], what="the io load ended at its deadline", within=10)
    await activity_env.run(revert_fault, inp)


async def test_the_revert_never_signals_a_process_that_only_names_the_marker(
    activity_env: ActivityEnvironment,
) -> None:
    inp = host_input({"action": "cpu", "cores": 0.1}, run_id="bystander")
    # Someone on the host greps for the load (`grep gameday-host-load:...`): its argv holds the marker exactly.
    bystander = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", host.marker(inp.run_id, inp.index)
    )
    try:
        await wait_until_async(lambda: Path(f"/proc/{bystander.pid}/cmdline").read_bytes().count(b"\0") >= 3,
                               what="the bystander started")  # fmt: skip
        assert load_of(inp) == []
        await activity_env.run(revert_fault, inp)
        state = Path(f"/proc/{bystander.pid}/stat").read_text().rpartition(")")[2].split()[0]
        assert state in ("S", "R"), "the revert killed a process that was not its load"
    finally:
        bystander.kill()
        await bystander.wait()


async def test_two_spellings_of_one_directory_are_one_resource(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    fill = tmp_path / "fill"
    (fill / "dir").mkdir()
    (fill / "link").symlink_to(fill / "dir")
    first = await applied(
        activity_env, host_input({"action": "disk_fill", "path": str(fill / "dir"), "size": "1MiB"}, run_id="one")
    )
    try:
        for i, spelling in enumerate((f"{fill}/./dir", f"{fill}//dir/", str(fill / "link"))):
            other = host_input({"action": "disk_fill", "path": spelling, "size": "1MiB"}, run_id="two", index=i)
            with pytest.raises(ApplicationError, match="loaded by another drill"):
                await activity_env.run(apply_fault, other)
            assert load_of(other) == []
    finally:
        await activity_env.run(revert_fault, first)
    assert list((fill / "dir").iterdir()) == []
    again = await applied(activity_env, host_input({"action": "disk_fill", "path": str(fill / "link"), "size": "1MiB"}))
    await activity_env.run(revert_fault, again)
    assert list((fill / "dir").iterdir()) == [] and list(Path(host.default_data_dir(), host.LOCKS).iterdir()) == []


async def test_connections_to_gamedays_own_temporal_or_database_are_refused(
    activity_env: ActivityEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMEDAY_TEMPORAL_ADDRESS", "127.0.0.1:17233")
    monkeypatch.setenv("GAMEDAY_DATABASE_URL", "postgresql+psycopg://gameday:secret@127.0.0.1:15432/gameday")
    for i, address in enumerate(("localhost:17233", "127.0.0.1:15432")):
        inp = host_input({"action": "connections", "address": address, "count": 1}, run_id="own", index=i)
        with pytest.raises(ApplicationError, match=r"not applied: .*gameday's own") as caught:
            await activity_env.run(apply_fault, inp)
        assert "secret" not in str(caught.value) and load_of(inp) == []


async def test_more_cores_than_the_host_has_or_an_io_file_larger_than_its_disk_is_refused(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    cases = {
        f"the host has {os.cpu_count()} core(s)": {"action": "cpu", "cores": (os.cpu_count() or 1) + 1},
        "bytes free": {"action": "io", "path": str(tmp_path / "fill"), "rate": "1MiB/s", "size": "1000000GiB"},
    }
    for i, (message, fault) in enumerate(cases.items()):
        inp = host_input(fault, run_id="too-big", index=i)
        with pytest.raises(ApplicationError, match="not applied") as caught:
            await activity_env.run(apply_fault, inp)
        assert message in str(caught.value) and load_of(inp) == []
    assert list((tmp_path / "fill").iterdir()) == []


async def test_connections_to_the_temporal_this_worker_really_uses_are_refused_whatever_its_environment_says(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAMEDAY_TEMPORAL_ADDRESS", raising=False)  # `gameday --address ... worker`: a flag only
    where = client.service_client.config.target_host
    inp = host_input({"action": "connections", "address": where, "count": 1}, run_id="own-flag")
    with pytest.raises(ApplicationError, match="gameday's own Temporal"):
        await ActivityEnvironment(client=client).run(apply_fault, inp)
    assert load_of(inp) == []


OWN_FS = """
import asyncio, json, os, sys
sys.path.insert(0, {root!r})
os.makedirs({mnt!r} + "/data"); os.makedirs({mnt!r} + "/fill")
os.environ["GAMEDAY_DATA_DIR"] = {mnt!r} + "/data"
from tests.activities.faults.test_host_faults import host_input
from gameday.activities.faults import host
from gameday.activities.faults.errors import NothingChanged

async def main():
    inp = host_input({{"action": "disk_fill", "path": {mnt!r} + "/fill", "leave_free": "0"}})
    try:
        record = await host.apply(inp)
        said = "applied"
        await host.revert(inp.model_copy(update={{"record": record}}))
    except NothingChanged as err:
        said = str(err)
    print(json.dumps({{"said": said, "left": os.listdir({mnt!r} + "/fill")}}))

asyncio.run(main())
"""


def test_a_disk_fill_never_leaves_gamedays_own_file_system_without_room(tmp_path: Path) -> None:
    seen = on_small_tmpfs(tmp_path, OWN_FS, fill_root=True)
    # Its data directory on the same file system: a fill to nothing would starve gameday's ledger, locks and the
    # load's own status. Refused before anything is written.
    assert "gameday's data directory" in seen["said"] and seen["left"] == [], seen
