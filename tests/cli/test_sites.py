"""Sites (issue 14): three ``gameday worker --site`` processes, each in its own PID and mount namespace
(``unshare --pid --fork --mount-proc``), share one dev server and one results database. Each site runs a
``sleep`` whose pidfile sits at the same path in every site (a tmpfs mounted over the directory inside the
namespace), and that names pid 2 in each: the most dangerous collision. Checked from the host by real pid."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.ledger import FaultLedger
from gameday.activities.store import Store
from gameday.model.records import Phase, StopRequest, Verdict
from tests.harness import eventually, start_drill, wait_phase, wait_until

pytestmark = pytest.mark.integration

SITES = ("a", "b", "c")


def _gameday() -> Path:
    return Path(sysconfig.get_path("scripts")) / "gameday"


@dataclass
class Site:
    name: str
    unshare: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def namespace_init(self) -> int:
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
        return int(children[0])

    def app_pid(self) -> int:
        """The host pid of the site's ``sleep`` (pid 2 inside its namespace)."""
        init = self.namespace_init()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(init) and fields.get("Name", "").strip() == "sleep":
                return int(entry.name)
        raise AssertionError(f"no sleep in site {self.name}")

    def app_state(self) -> str:
        for line in Path(f"/proc/{self.app_pid()}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
        raise AssertionError("no State line")


@pytest.fixture(scope="module")
def sites(dev_env: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Site], str, Path]]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI"):
            raise AssertionError("sites tests need root and unshare(1)")
        pytest.skip("needs root and unshare(1)")
    from temporalio.testing import WorkflowEnvironment

    assert isinstance(dev_env, WorkflowEnvironment)
    address = dev_env.client.service_client.config.target_host
    work = tmp_path_factory.mktemp("sites")
    run_dir = work / "run"  # the same path on every site; a tmpfs of its own inside each namespace
    run_dir.mkdir()
    queue = f"test-sites-{uuid.uuid4()}"
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": f"sqlite:///{work / 'results.db'}",
        "GAMEDAY_DATA_DIR": str(work / "data"),
    }
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    started: dict[str, Site] = {}
    try:
        for name in SITES:
            log = work / f"worker-{name}.log"
            script = (
                f"mount -t tmpfs tmpfs {run_dir} || exit 9; echo {name} > {run_dir}/site; "
                f"sleep 3600 & echo $! > {run_dir}/app.pid; "
                f"exec {gameday} worker --site {name}"
            )
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            started[name] = Site(name, proc, log, env)
        for site in started.values():
            wait_until(
                lambda s=site: "worker polling task queue" in s.log.read_text(), what=f"site {site.name}", timeout=60
            )
        yield started, queue, run_dir / "app.pid"
    finally:
        for site in started.values():
            if site.unshare.poll() is None:
                site.unshare.send_signal(
                    signal.SIGKILL
                )  # --kill-child: pid 1 of the namespace, so all of the site, dies
                site.unshare.wait(timeout=10)
        # Every worker of these sites (nsenter'd ones too) is gone: a test never leaves a worker polling behind.
        wait_until(lambda: not processes_of(queue), what=f"no worker of queue {queue} left", timeout=20)


def processes_of(queue: str) -> list[int]:
    """Pids of the processes whose environment names ``queue`` (the workers of one test's sites)."""
    marker = f"GAMEDAY_TASK_QUEUE={queue}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _drill(name: str, pidfile: Path, on: tuple[str, ...], observe: str = "5m") -> str:
    targets = "".join(f'  app_{s}: {{process: {{pidfile: "{pidfile}"}}, site: {s}}}\n' for s in on)
    faults = "".join(f"  - {{target: app_{s}, action: pause}}\n" for s in on)
    return f"name: {name}\ntargets:\n{targets}faults:\n{faults}observe: {{duration: {observe}}}\n"


async def test_a_drill_on_two_sites_pauses_exactly_their_processes_and_not_the_third_sites_same_pidfile(
    client: Client, sites: tuple[dict[str, Site], str, Path]
) -> None:
    by_name, queue, pidfile = sites
    pids = {name: site.app_pid() for name, site in by_name.items()}
    assert len(set(pids.values())) == 3  # one pidfile path, three different processes
    handle = await start_drill(client, queue, _drill("two-sites", pidfile, ("a", "b")))
    await wait_phase(handle, Phase.OBSERVE, within=60)
    assert {name: site.app_state() for name, site in by_name.items()} == {"a": "T", "b": "T", "c": "S"}
    shown = await asyncio.to_thread(
        subprocess.run, [str(_gameday()), "workers"], env=by_name["a"].env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    text = shown.stdout
    assert "3 site(s) live" in text, text
    for name in SITES:
        section = text.split(f"site {name}: ")[1].split("\nsite ")[0]
        assert section.startswith("1 worker(s)") and f" site={name}  last poll " in section, text
        if name == "c":
            assert "faults held: none" in section, text
        else:
            assert f"faults held: 1\n    pause app_{name} (run {handle.id})" in section, text
    await handle.signal("emergency_stop", StopRequest(reason="checked", by="test"))
    record = await handle.result()
    assert record.verdict == Verdict.ABORTED, record.summary
    assert {name: site.app_state() for name, site in by_name.items()} == {"a": "S", "b": "S", "c": "S"}
    assert {name: site.app_pid() for name, site in by_name.items()} == pids


async def test_a_pidfile_on_two_sites_only_the_target_sites_process_is_touched(
    client: Client, sites: tuple[dict[str, Site], str, Path]
) -> None:
    by_name, queue, pidfile = sites
    handle = await start_drill(client, queue, _drill("site-b-only", pidfile, ("b",)))
    await wait_phase(handle, Phase.OBSERVE, within=60)
    assert {name: site.app_state() for name, site in by_name.items()} == {"a": "S", "b": "T", "c": "S"}
    await handle.signal("emergency_stop", StopRequest(reason="checked", by="test"))
    assert (await handle.result()).verdict == Verdict.ABORTED
    assert by_name["b"].app_state() == "S"


async def test_a_host_local_target_without_a_site_is_refused_when_several_sites_are_live(
    client: Client, sites: tuple[dict[str, Site], str, Path]
) -> None:
    by_name, queue, pidfile = sites
    text = f'name: no-site\ntargets:\n  app: {{process: {{pidfile: "{pidfile}"}}}}\n'
    text += "faults:\n  - {target: app, action: pause}\nobserve: {duration: 5m}\n"
    record = await (await start_drill(client, queue, text)).result()
    assert record.verdict == Verdict.ERROR
    assert "app name no site (`site:` on a target" in record.summary, record.summary
    assert "3 sites are live (a, b, c): nothing was injected" in record.summary, record.summary
    assert record.faults == [] or all(f.applied_at is None for f in record.faults)
    assert {site.app_state() for site in by_name.values()} == {"S"}


async def test_a_site_without_a_live_worker_is_named_and_nothing_is_injected(
    client: Client, sites: tuple[dict[str, Site], str, Path]
) -> None:
    by_name, queue, pidfile = sites
    record = await (await start_drill(client, queue, _drill("site-gone", pidfile, ("a", "nowhere")))).result()
    assert record.verdict == Verdict.ERROR
    assert "no live worker at site(s) nowhere (needed by app_nowhere on nowhere)" in record.summary, record.summary
    assert {site.app_state() for site in by_name.values()} == {"S"}


async def test_a_start_up_sweep_of_site_b_reverts_only_site_bs_faults_and_gameday_sweep_routes_site_as(
    client: Client, sites: tuple[dict[str, Site], str, Path], tmp_path: Path
) -> None:
    by_name, queue, pidfile = sites
    handle = await start_drill(client, queue, _drill("orphans", pidfile, ("a", "b")))
    await wait_phase(handle, Phase.OBSERVE, within=60)
    await handle.terminate("test: orphan both faults")  # no rollback: the ledger has both applied
    assert {name: site.app_state() for name, site in by_name.items()} == {"a": "T", "b": "T", "c": "S"}
    env = by_name["b"].env
    ledger = FaultLedger(Store(env["GAMEDAY_DATABASE_URL"]))
    assert {(e.input.target_name, e.site) for e in ledger.pending() if e.input.run_id == handle.id} == {
        ("app_a", "a"),
        ("app_b", "b"),
    }

    # A second worker of site b, in site b's namespaces: its start-up sweep reverts b's fault, never a's.
    log = tmp_path / "worker-b2.log"
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    target = str(by_name["b"].namespace_init())
    with log.open("wb") as out:
        second = await asyncio.to_thread(
            subprocess.Popen,
            ["nsenter", "--target", target, "--pid", "--mount", "--", str(gameday), "worker", "--site", "b"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: by_name["b"].app_state() == "S", what="site b's sweep to resume its process", timeout=60)
        wait_until(lambda: "left app_a" in log.read_text() or "pause app_a" in log.read_text(), what="a's row left")
        assert by_name["a"].app_state() == "T"
        pending = {(e.input.target_name, e.site) for e in ledger.pending() if e.input.run_id == handle.id}
        assert pending == {("app_a", "a")}
    finally:
        second.terminate()
        second.wait(timeout=30)

    # `gameday sweep` from the host sends a's revert to a worker of site a.
    swept = await asyncio.to_thread(
        subprocess.run, [str(gameday), "sweep"], env=env, capture_output=True, text=True, timeout=180
    )
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert by_name["a"].app_state() == "S"
    assert [e for e in ledger.pending() if e.input.run_id == handle.id] == []
    assert {site.app_state() for site in by_name.values()} == {"S"}


async def test_a_command_probe_from_a_site_samples_on_that_sites_worker_only(
    client: Client, sites: tuple[dict[str, Site], str, Path]
) -> None:
    by_name, queue, pidfile = sites
    site_file = pidfile.parent / "site"  # the same path on every site; each holds its own site's name
    probe = f'  - {{name: on-c, command: {{run: "cat {site_file}", stdout_contains: c}}, from: c}}\n'
    text = _drill("probe-from-c", pidfile, ("a",), observe="1s") + "hypothesis:\n" + probe
    record = await (await start_drill(client, queue, text)).result()
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert record.probes and all(p.ok for p in record.probes), record.probes
    assert {site.app_state() for site in by_name.values()} == {"S"}

    probe_b = f'  - {{name: on-b, command: {{run: "cat {site_file}"}}, from: b}}\n'
    refused = await (await start_drill(client, queue, text + probe_b)).result()
    assert refused.verdict == Verdict.ERROR
    assert "the probes run from 2 sites (b, c)" in refused.summary, refused.summary


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_a_revert_whose_site_worker_was_killed_waits_for_a_worker_of_that_site_and_a_new_one_reverts_it(
    client: Client, sites: tuple[dict[str, Site], str, Path], tmp_path: Path
) -> None:
    by_name, queue, pidfile = sites
    env = by_name["a"].env
    # Site d: pid 1 of its namespace is a shell holding the app, so its worker can die without taking the app.
    holder = await asyncio.to_thread(
        subprocess.Popen,
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sh",
            "-c",
            f"mount -t tmpfs tmpfs {pidfile.parent} || exit 9; sleep 3600 & echo $! > {pidfile}; wait",
        ],
        stdin=subprocess.DEVNULL,
    )
    site_d = Site("d", holder, tmp_path / "unused.log", env)
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker(n: int) -> Path:
        log = tmp_path / f"worker-d{n}.log"
        init = str(_children(holder.pid)[0])
        command = ["nsenter", "--target", init, "--pid", "--mount", "--", str(_gameday()), "worker", "--site", "d"]
        with log.open("wb") as out:
            workers.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
        wait_until(lambda: "worker polling task queue" in log.read_text(), what=f"worker d{n}", timeout=60)
        return log

    try:
        wait_until(lambda: pidfile_in(holder.pid, pidfile), what="site d's app")
        start_worker(1)
        handle = await start_drill(client, queue, _drill("site-d-dies", pidfile, ("d",)))
        await wait_phase(handle, Phase.OBSERVE, within=60)
        assert site_d.app_state() == "T"
        # SIGKILL site d's only worker (nsenter's child), then stop the drill: its revert must wait for site d.
        nsenter = workers[0]
        (worker_pid,) = _children(nsenter.pid)
        os.kill(worker_pid, signal.SIGKILL)
        nsenter.wait(timeout=10)
        await handle.signal("emergency_stop", StopRequest(reason="site d lost its worker", by="test"))

        async def revert_pending() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(p.activity_type.name == "revert_fault" for p in pending)

        await eventually(revert_pending, what="the revert to wait on site d's queue", within=60)
        assert site_d.app_state() == "T"  # no worker of another site reverted (or touched) it
        assert {by_name[name].app_state() for name in SITES} == {"S"}

        async def alerted() -> bool:
            """An ``alert`` of event site_without_worker for site d, scheduled and completed (by whichever worker
            polls the shared queue: not only the ones of this test)."""
            sent: set[int] = set()
            async for event in handle.fetch_history_events():
                scheduled = event.activity_task_scheduled_event_attributes
                if (
                    event.HasField("activity_task_scheduled_event_attributes")
                    and scheduled.activity_type.name == "alert"
                ):
                    data = b"".join(p.data for p in scheduled.input.payloads)
                    if b"site_without_worker" in data and b"site d has faults and no live worker" in data:
                        sent.add(event.event_id)
                done = event.activity_task_completed_event_attributes
                if event.HasField("activity_task_completed_event_attributes") and done.scheduled_event_id in sent:
                    return True
            return False

        await eventually(alerted, what="the alert that site d has faults and no worker", within=60)

        start_worker(2)
        record = await handle.result()
        assert record.verdict == Verdict.ABORTED, record.summary
        assert [f.state.value for f in record.faults] == ["reverted"]
        assert site_d.app_state() == "S"
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)


def pidfile_in(unshare_pid: int, pidfile: Path) -> bool:
    """Whether the namespace under ``unshare_pid`` has written its pidfile (seen through its mount namespace)."""
    try:
        init = _children(unshare_pid)[0]
        return Path(f"/proc/{init}/root{pidfile}").read_text().strip() != ""
    except (IndexError, OSError):
        return False
