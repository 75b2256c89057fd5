"""Target locks and the fault ledger against a real SQLite database."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import FaultActivities
from gameday.activities.ledger import FaultLedger
from gameday.activities.locks import TargetLocks
from gameday.activities.resolve import (
    Unresolved,
    address,
    http_origin,
    resolve_target,
    resolve_targets,
    split_host_port,
)
from gameday.activities.store import Store
from gameday.model.drill import Target
from gameday.model.locks import LockInput, ResolveInput, keys_of, lock_key
from gameday.model.plan import plan_lines
from gameday.model.records import FaultInput, FaultRecord, FaultState
from tests.docker_support import Containers
from tests.harness import drill_from_yaml


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


# --- resolution: the key is the resource, whatever its spelling ------------------------------------------


@pytest.mark.parametrize(
    ("spelled", "normal"),
    [
        ("127.0.0.1", "127.0.0.1:80"),
        ("::1", "[::1]:80"),
        ("[::1]", "[::1]:80"),
        ("0:0:0:0:0:0:0:1", "[::1]:80"),
        ("::ffff:127.0.0.1", "127.0.0.1:80"),
        ("FE80:0000::0001", "[fe80::1]:80"),
    ],
)
def test_an_address_has_one_spelling(spelled: str, normal: str) -> None:
    assert address(spelled, 80) == normal


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://db", ("http", "db", 80)),
        ("HTTP://DB:80", ("http", "db", 80)),
        ("https://db", ("https", "db", 443)),
        ("https://db:8443/api//", ("https", "db", 8443)),
        ("http://user:secret@db:81/x?y=1", ("http", "db", 81)),
        ("http://[::1]:8080", ("http", "::1", 8080)),
        ("http://[0:0::1]", ("http", "0:0::1", 80)),
    ],
)
def test_an_http_origin_drops_path_case_credentials_and_fills_the_default_port(
    url: str, origin: tuple[str, str, int]
) -> None:
    assert http_origin(url) == origin


def test_an_http_url_without_a_host_or_a_valid_port_is_unresolved() -> None:
    for url in ("http://:80", "http://db:http"):
        with pytest.raises(Unresolved, match="base_url"):
            http_origin(url)


@pytest.mark.parametrize(
    ("listen", "split"),
    [("127.0.0.1:15432", ("127.0.0.1", 15432)), ("[::1]:80", ("::1", 80)), ("::1:80", ("::1", 80))],
)
def test_a_listen_address_splits_into_host_and_port(listen: str, split: tuple[str, int]) -> None:
    assert split_host_port(listen) == split


def _target(text: str) -> Target:
    return drill_from_yaml(f"name: t\ntargets: {{t: {text}}}\nfaults: []\n").targets["t"]


async def _keys(text: str) -> set[str]:
    return set((await resolve_target("t", _target(text))).keys)


async def test_localhost_and_its_address_share_a_key_and_url_spellings_resolve_alike() -> None:
    loopback = await _keys('{http: {base_url: "http://127.0.0.1:8080"}}')
    assert loopback == {"http:http://127.0.0.1:8080"}
    assert loopback <= await _keys('{http: {base_url: "http://LocalHost:8080/api/"}}')
    assert await _keys('{http: {base_url: "http://127.0.0.1"}}') == await _keys(
        '{http: {base_url: "http://127.0.0.1:80/"}}'
    )
    assert await _keys('{http: {base_url: "http://[::1]:8080"}}') == await _keys(
        '{http: {base_url: "http://[0:0:0:0:0:0:0:1]:8080"}}'
    )
    assert await _keys('{proxy: {listen: "[::1]:15432", upstream: "127.0.0.1:5432"}}') == await _keys(
        '{proxy: {listen: "::1:15432", upstream: "127.0.0.1:9999"}}'
    )
    assert await _keys("{command: {}, lock: orders}") == {"lock:orders"}
    assert "lock:orders" in await _keys('{http: {base_url: "http://127.0.0.1"}, lock: orders}')


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real process and a pidfile naming it."""
    proc = subprocess.Popen(["sleep", "300"])
    pidfile = tmp_path / "run" / "sleeper.pid"
    pidfile.parent.mkdir()
    pidfile.write_text(f"{proc.pid}\n")
    yield proc.pid, pidfile
    proc.kill()
    proc.wait(timeout=10)


async def test_a_pid_and_every_spelling_of_its_pidfile_resolve_to_one_process(
    sleeper: tuple[int, Path], tmp_path: Path
) -> None:
    pid, pidfile = sleeper
    (tmp_path / "link").symlink_to(pidfile.parent)
    by_pid = await _keys(f"{{process: {{pid: {pid}}}}}")
    [identity] = by_pid
    assert identity.startswith(f"process:pid:{pid}@")  # with the start time: a reused pid is another process
    by_file = await _keys(f'{{process: {{pidfile: "{pidfile}"}}}}')
    assert by_file == {identity, f"process:{pidfile}"}
    spellings = (f"{pidfile.parent}//sleeper.pid", f"{tmp_path}/run/../run/sleeper.pid", f"{tmp_path}/link/sleeper.pid")
    for spelling in spellings:
        assert await _keys(f'{{process: {{pidfile: "{spelling}"}}}}') == by_file


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_a_target_that_is_not_there_fails_resolution_naming_it(tmp_path: Path) -> None:
    missing = _target(f'{{process: {{pidfile: "{tmp_path}/nope.pid"}}}}')
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(resolve_targets, ResolveInput(targets={"db": missing}))
    assert raised.value.type == "TargetUnresolved"  # retried only while the drill's lock_wait lasts
    assert raised.value.message.startswith("target 'db' (process) cannot be resolved: cannot read pidfile")
    dead = _exited_pid()
    with pytest.raises(Unresolved, match=f"no running process with pid {dead}"):
        await resolve_target("gone", _target(f"{{process: {{pid: {dead}}}}}"))
    with pytest.raises(Unresolved, match="does not resolve"):
        await resolve_target("web", _target('{http: {base_url: "http://no-such-host.invalid"}}'))


@pytest.mark.integration
async def test_a_container_name_and_its_id_resolve_to_one_key_and_an_unknown_one_is_unresolved(
    containers: Containers,
) -> None:
    box = containers.sleeper()
    by_name = await _keys(f"{{docker: {{container: {box.name}}}}}")
    assert by_name == {f"docker:{box.id}"}
    assert await _keys(f"{{docker: {{container: {str(box.id)[:12]}}}}}") == by_name
    pool = {"gd.locks.pool": box.name}
    picked = [containers.sleeper(labels=pool), containers.sleeper(labels=pool)]
    containers.sleeper(labels=pool, opt_in=False)
    # One of two will be picked at apply: both are locked, the container that did not opt in is not.
    assert await _keys(f"{{docker: {{labels: {{gd.locks.pool: {box.name}}}, count: 1}}}}") == {
        f"docker:{c.id}" for c in picked
    }
    with pytest.raises(Unresolved, match="target 't' \\(docker\\) cannot be resolved: no container named"):
        await resolve_target("t", _target("{docker: {container: gd-test-no-such-container}}"))


def test_dry_run_says_target_locks_are_resolved_in_preflight() -> None:
    drill = drill_from_yaml("""
name: plan
targets:
  db: {process: {pidfile: /run/db.pid}}
faults:
  - {target: db, action: pause}
""")
    assert "preflight: lock what db resolve(s) to on the worker then (pid + start time" in "\n".join(plan_lines(drill))


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
