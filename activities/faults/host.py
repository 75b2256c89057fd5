"""``host`` faults: CPU, memory, disk, connection and io load, each in a process group that dies with its worker.

The apply starts the load (``activities/faults/host_load.py``) as a child of this worker process, in a process
group of its own, marked with the run and the fault's index (``gameday-host-load:<run>-<index>`` in its command
line). Every process of the group gets SIGKILL when its parent dies (``PR_SET_PDEATHSIG``): a worker SIGKILLed
mid-fault takes its load with it, its connections closed and its memory freed by the kernel. A lost control plane
ends it through the fault lease (``activities/fault_lease.py`` reverts through :func:`revert`), a stop or the
rollback through :func:`revert`, and the load ends itself at a deadline whatever happens
(``GAMEDAY_HOST_MAX_HOLD``; a fault with a ``duration``: a minute after it).

The revert never trusts the apply's record: it finds the group by its command line in ``/proc`` (``-m`` the load's
module and the marker: never a process of gameday's own, nor one that only names the marker), stops it, removes
the one file a ``disk_fill`` or ``io`` writes (its name is made of the run and the index, so a revert on another
worker of the host finds exactly it: a file is all a SIGKILLed worker leaves behind, and the next worker's revert
removes it), and records what was held (CPU seconds, bytes, connections) from the status file the load keeps in
gameday's data directory.

Worker-side limits (``config/app.py``, ``GAMEDAY_HOST_*``): memory above ``GAMEDAY_HOST_MAX_MEMORY``, files outside
``GAMEDAY_HOST_FILL_ROOTS`` (or inside gameday's data directory), more connections than
``GAMEDAY_HOST_MAX_CONNECTIONS`` and connections to gameday's own Temporal or results database are refused before
anything starts. Two drills never load one resource of a host at once: the apply takes a lock file per resource
(:func:`host_resource`: ``cpu``, ``memory``, ``disk_fill:<mount point>``, ``io:<real dir>``, ``tcp:<address>``) in
the data directory, released by the revert (found by its holder). An apply interrupted before its load holds
(cancelled) undoes itself: a terminated drill has no rollback to do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from gameday.activities.faults import narrow
from gameday.activities.faults.errors import ApplyError, NothingChanged, RevertError
from gameday.activities.faults.file import host_id
from gameday.config.app import GamedayConfig, default_data_dir
from gameday.model.kinds.base import FaultBase
from gameday.model.kinds.docker import memory_bytes
from gameday.model.kinds.host import (
    FAULTS,
    ConnectionsFault,
    CpuFault,
    DiskFillFault,
    HostTarget,
    IoFault,
    MemoryFault,
    resource_key,
)
from gameday.model.records import FaultInput, FaultRecord
from gameday.model.units import parse_duration, parse_percent

log = logging.getLogger("gameday.host")

LOADS = "host-loads"
"""Under the data directory: each load's status file (``<run>-<index>.json``)."""
LOCKS = "host-locks"
"""Under the data directory: one lock file per loaded resource of this host."""
MARKER = "gameday-host-load:"
LOAD_MODULE = "gameday.activities.faults.host_load"
"""The load's module: its command line is ``<python> -m LOAD_MODULE <marker> ...``, and only such a one is its."""
STOP_GRACE = 1.0
"""Seconds a stopped load has to tidy up (close, remove, write its last status) before its group is killed."""
AFTER_DURATION = 60.0
"""A load with a ``duration`` ends itself this many seconds after it, if nobody reverted it."""

OWN_ROOM = 64 * 1024**2
"""Bytes a ``disk_fill`` always leaves free on the file system of gameday's data directory (its ledger, results,
locks and the loads' status are written there, the revert's included)."""

WATCH_EVERY = 2.0
"""Seconds between two looks, by the worker that started loads, at whether their drills' workflows still run."""

_children: dict[str, asyncio.subprocess.Process] = {}
"""Loads this worker process started, by slug: reaped when reverted (or when they end)."""
_watched: dict[str, FaultInput] = {}
"""Loads this worker process started and has not reverted, by slug: what :func:`_watch` looks after."""
_watcher: asyncio.Task[None] | None = None


# --- names ---------------------------------------------------------------------------------------------------


def slug(run_id: str, index: int) -> str:
    """``<run>-<index>``, file-name safe, unique per fault of a run."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:120]
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"{safe}.{digest}-{index}"


def marker(run_id: str, index: int) -> str:
    return MARKER + slug(run_id, index)


def written_file(fault: FaultBase, run_id: str, index: int) -> Path | None:
    """The one file a ``disk_fill`` or ``io`` writes: ``<real path>/.gameday-<action>-<run>-<index>``.

    In the directory the path resolves to (symlinks, ``..``): the one the worker checked against its roots.
    """
    if isinstance(fault, DiskFillFault | IoFault):
        return Path(os.path.realpath(fault.path)) / f".gameday-{fault.action}-{slug(run_id, index)}"
    return None


def status_file(run_id: str, index: int) -> Path:
    return default_data_dir() / LOADS / f"{slug(run_id, index)}.json"


def _lock_file(key: str) -> Path:
    return default_data_dir() / LOCKS / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


# --- the worker's limits -------------------------------------------------------------------------------------


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise ApplyError("cannot read the host's memory size from /proc/meminfo")


def _max_memory(config: GamedayConfig, total: int) -> int:
    text = config.host_max_memory
    try:
        if text.endswith("%"):
            return int(total * parse_percent(text))
        found = memory_bytes(text)
        if isinstance(found, int) and not isinstance(found, bool):
            return found
    except ValueError:
        pass
    raise ApplyError(f"GAMEDAY_HOST_MAX_MEMORY={text!r} is not a size or a percentage: memory faults refused")


def _max_connections(config: GamedayConfig) -> int:
    try:
        return int(config.host_max_connections)
    except ValueError:
        raise ApplyError(
            f"GAMEDAY_HOST_MAX_CONNECTIONS={config.host_max_connections!r} is not a number: connections refused"
        ) from None


def _max_hold(config: GamedayConfig) -> float:
    try:
        value = parse_duration(config.host_max_hold)
    except ValueError:
        value = None
    if value is None or not hasattr(value, "total_seconds"):
        raise ApplyError(f"GAMEDAY_HOST_MAX_HOLD={config.host_max_hold!r} is not a duration: host faults refused")
    return float(value.total_seconds())


def fill_roots(config: GamedayConfig) -> list[str]:
    return [os.path.realpath(r) for r in config.host_fill_roots.split(os.pathsep) if r.strip()]


def _check_path(config: GamedayConfig, path: str) -> str:
    """The real directory a ``disk_fill``/``io`` writes in, if the worker allows it.

    Raises:
        ApplyError: not a directory, outside every allowed root, or inside gameday's data directory.
    """
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise ApplyError(f"{path} is not a directory")
    roots = fill_roots(config)
    if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots):
        allowed = ", ".join(roots) or "none"
        raise ApplyError(f"{path} (resolves to {real}) is outside this worker's GAMEDAY_HOST_FILL_ROOTS ({allowed})")
    data = os.path.realpath(default_data_dir())
    if real == data or real.startswith(data.rstrip("/") + "/"):
        raise ApplyError(f"{path} is inside gameday's data directory ({data}): a drill never fills gameday itself")
    return real


def _mount_of(real: str) -> str:
    """The mount point of the file system holding the real directory ``real``."""
    path = real
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def host_resource(fault: FaultBase) -> str:
    """The resource a fault loads on this host, as its lock file names it: a ``disk_fill`` its file system's mount
    point (two fills of one file system, in any directories, take from one free space), an ``io`` its real
    directory, others :func:`resource_key` (``cpu``, ``memory``, ``tcp:<address>``)."""
    if isinstance(fault, DiskFillFault):
        return f"disk_fill:{_mount_of(os.path.realpath(fault.path))}"
    if isinstance(fault, IoFault):
        return f"io:{os.path.realpath(fault.path)}"
    return resource_key(fault)


def _own_endpoints(config: GamedayConfig) -> dict[str, str]:
    """gameday's own servers a worker talks to, ``host:port`` → what it is (never with a password)."""
    own = {config.temporal_address: "Temporal"}
    with contextlib.suppress(RuntimeError, AttributeError):  # in an activity: where this worker really connected
        own[activity.client().service_client.config.target_host] = "Temporal"
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):
        url = make_url(config.resolved_database_url)
        port = url.port or {"postgresql": 5432, "mysql": 3306}.get(url.get_backend_name())
        if url.host and port:
            own[f"{url.host}:{port}"] = "results database"
    return own


def _addresses(host: str, port: int) -> set[tuple[str, int]]:
    with contextlib.suppress(OSError, UnicodeError):
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        return {(str(info[4][0]), port) for info in infos}
    return set()


def _refuse_own(config: GamedayConfig, host: str, port: int) -> None:
    """Raises ApplyError when ``host:port`` is gameday's own Temporal or results database: a drill never exhausts
    the control plane that reverts it."""
    wanted = _addresses(host, port)
    for address, what in _own_endpoints(config).items():
        own_host, _, own_port = address.rpartition(":")
        if not own_port.isdigit():
            continue
        if wanted & _addresses(own_host, int(own_port)):
            raise ApplyError(f"{host}:{port} is gameday's own {what} ({address}): a drill never exhausts it")


def load_spec(inp: FaultInput, fault: FaultBase, config: GamedayConfig) -> dict[str, Any]:
    """The load's JSON spec, after the worker's limits (nothing is started).

    Raises:
        ApplyError: the fault is over a limit of this worker, or its target cannot be reached (an address).
    """
    spec: dict[str, Any] = {"action": fault.action}
    if isinstance(fault, CpuFault):
        have = os.cpu_count() or 1
        cores = fault.cores if fault.cores is not None else float(have)
        if cores > have:
            # A burner per core asked for: more than the host has is no more load, only more processes.
            raise ApplyError(f"{cores:g} cores asked for: the host has {have} core(s)")
        workers = max(1, int(-(-cores // 1)))  # ceil
        spec |= {"workers": workers, "duty": min(1.0, cores * fault.load / workers)}
    elif isinstance(fault, MemoryFault):
        total = _mem_total()
        want, cap = fault.size_of(total), _max_memory(config, total)
        if want > cap:
            raise ApplyError(
                f"{want} bytes of memory asked for, above this worker's cap of {cap} (GAMEDAY_HOST_MAX_MEMORY="
                f"{config.host_max_memory})"
            )
        spec["bytes"] = want
    elif isinstance(fault, DiskFillFault):
        real = _check_path(config, fault.path)
        spec |= {"bytes": fault.size, "leave_free": fault.leave_free, "keep_free": 0}
        data = default_data_dir()
        data.mkdir(parents=True, exist_ok=True)
        if os.stat(real).st_dev == os.stat(data).st_dev:
            if fault.leave_free is not None and fault.leave_free < OWN_ROOM:
                raise ApplyError(
                    f"{fault.path} is on the file system of gameday's data directory ({data}): leave_free must be at "
                    f"least {OWN_ROOM} bytes there"
                )
            spec["keep_free"] = OWN_ROOM
    elif isinstance(fault, IoFault):
        _check_path(config, fault.path)
        spec |= {"rate": fault.rate, "size": fault.size}
    elif isinstance(fault, ConnectionsFault):
        cap = _max_connections(config)
        if fault.count > cap:
            raise ApplyError(
                f"{fault.count} connections asked for, above this worker's cap of {cap} (GAMEDAY_HOST_MAX_CONNECTIONS)"
            )
        host, _, port = fault.address.rpartition(":")
        _refuse_own(config, host, int(port))
        spec |= {"host": host.strip("[]"), "port": int(port), "count": fault.count}
        spec |= {"postgres_user": fault.postgres_user, "send_hex": (fault.send or "").encode("latin-1").hex()}
    else:  # pragma: no cover - narrow() lets only the host faults through
        raise ApplyError(f"unknown host action {fault.action!r}")
    target = written_file(fault, inp.run_id, inp.index)
    if target is not None:
        spec["file"] = str(target)
    hold = _max_hold(config)
    if fault.duration is not None:
        hold = min(hold, fault.duration.total_seconds() + AFTER_DURATION)
    spec |= {"deadline": hold, "status": str(status_file(inp.run_id, inp.index)), "parent": os.getpid()}
    return spec


# --- locks per resource ------------------------------------------------------------------------------------


def _take_lock(inp: FaultInput, key: str) -> None:
    """Hold ``key`` on this host for this fault (again: fine).

    Raises:
        NothingChanged: another fault holds it.
    """
    where = _lock_file(key)
    where.parent.mkdir(parents=True, exist_ok=True)
    mine = {"key": key, "run_id": inp.run_id, "index": inp.index}
    # Written whole, then linked into place (atomic, fails if taken): a worker dying mid-write never leaves an
    # empty lock file that names no holder, which no revert would release.
    partial = where.with_name(f"{where.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    partial.write_text(json.dumps(mine))
    try:
        os.link(partial, where)
    except FileExistsError:
        try:
            holder = json.loads(where.read_text())
        except (OSError, ValueError):
            holder = {}
        if holder.get("run_id") == inp.run_id and holder.get("index") == inp.index:
            return
        raise NothingChanged(
            f"{key} on this host is loaded by another drill (run {holder.get('run_id', '?')}, fault "
            f"{holder.get('index', '?')}) until it is reverted"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _release_locks(inp: FaultInput) -> None:
    """Release every lock this fault holds on this host, found by its holder (never trusting a key recomputed now:
    a symlink changed or a file system unmounted since the apply names another resource)."""
    try:
        entries = list((default_data_dir() / LOCKS).iterdir())
    except OSError:
        return
    for where in entries:
        try:
            holder = json.loads(where.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(holder, dict) and holder.get("run_id") == inp.run_id and holder.get("index") == inp.index:
            with contextlib.suppress(FileNotFoundError):
                where.unlink()


# --- the load's processes ----------------------------------------------------------------------------------


def _own_lineage() -> set[int]:
    """This process and its ancestors: never signalled, whatever their command line says."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def load_pids(mark: str) -> list[int]:
    """The live processes of the load marked ``mark`` (its supervisor and the burners it forked: command line
    ``<python> -m gameday.activities.faults.host_load <mark> ...``), never gameday's own nor one that merely
    names the marker (a ``grep`` for it)."""
    found, own = [], _own_lineage()
    needle = [b"-m", LOAD_MODULE.encode(), mark.encode()]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if args[1:4] == needle and state != "Z":
            found.append(int(entry))
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def _stop_load(mark: str, key: str) -> tuple[int, bool]:
    """SIGTERM the load, then SIGKILL whatever of it is left after :data:`STOP_GRACE`; (processes found, clean)."""
    pids = load_pids(mark)
    if not pids:
        await _reap(key)
        return 0, True
    _signal(pids, signal.SIGTERM)
    gone_by = time.monotonic() + STOP_GRACE
    while load_pids(mark) and time.monotonic() < gone_by:
        await _reap(key, 0.05)
    clean = True
    left = load_pids(mark)
    if left:
        clean = False
        _signal(left, signal.SIGKILL)
        gone_by = time.monotonic() + 5
        while load_pids(mark) and time.monotonic() < gone_by:
            await _reap(key, 0.05)
    await _reap(key)
    return len(pids), clean


async def _reap(key: str, wait: float = 0.0) -> None:
    proc = _children.get(key)
    if proc is None:
        if wait:
            await asyncio.sleep(wait)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), wait or 0.01)
    if proc.returncode is not None:
        _children.pop(key, None)


def _read_status(run_id: str, index: int) -> dict[str, Any]:
    try:
        found = json.loads(status_file(run_id, index).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _held(status: dict[str, Any]) -> dict[str, str]:
    keys = ("cpu_seconds", "rss_bytes", "bytes", "connections_opened", "connections_held", "connections_failed")
    return {f"held_{k}": str(status[k]) for k in keys if k in status}


def _held_text(status: dict[str, Any]) -> str:
    parts = []
    if "cpu_seconds" in status:
        parts.append(f"{status['cpu_seconds']} CPU-s burnt")
    if "rss_bytes" in status:
        parts.append(f"{status['rss_bytes']} B resident")
    elif "bytes" in status:
        parts.append(f"{status['bytes']} B written")
    if "connections_opened" in status:
        parts.append(f"{status['connections_held']} connection(s) held, {status['connections_opened']} opened")
    return ", ".join(parts) or "nothing recorded"


# --- the provider ------------------------------------------------------------------------------------------


async def capture(inp: FaultInput) -> dict[str, str]:
    """Check the fault against this worker's limits (nothing is started); the host's facts for the record.

    Raises:
        ApplyError: over a limit, or a path outside the allowed roots.
    """
    _, fault = narrow(inp, HostTarget, *FAULTS)
    config = GamedayConfig.from_env()
    await asyncio.to_thread(load_spec, inp, fault, config)
    resource = await asyncio.to_thread(host_resource, fault)
    return {"host": host_id(), "cpus": str(os.cpu_count() or 1), "resource": resource}


async def apply(inp: FaultInput) -> FaultRecord:
    """Start the load and return once it holds (memory touched, file written, connections open).

    Raises:
        NothingChanged: refused by a limit or a lock, or the load could not start (it left nothing behind).
        ApplyError: the load did not say it was ready in time (the revert stops whatever it started).
    """
    _, fault = narrow(inp, HostTarget, *FAULTS)
    config = GamedayConfig.from_env()
    try:
        spec = await asyncio.to_thread(load_spec, inp, fault, config)
    except ApplyError as err:
        raise NothingChanged(str(err)) from err
    key, mark, name = (
        await asyncio.to_thread(host_resource, fault),
        marker(inp.run_id, inp.index),
        slug(inp.run_id, inp.index),
    )
    if load_pids(mark):
        raise ApplyError(f"a load of this fault is already running ({mark}): the revert stops it first")
    _take_lock(inp, key)
    try:
        proc, said = await _start(spec, mark, name)
    except BaseException:
        # Interrupted (cancelled: the drill stopped or was terminated; the worker shutting down): a terminated
        # drill has no rollback, so the apply never leaves a load it started behind, nor its lock.
        await asyncio.shield(_undo(fault, inp, mark, name))
        raise
    if "error" in said:
        await _undo(fault, inp, mark, name)
        raise NothingChanged(f"the load did not start: {str(said['error'])[:300]}")
    changed = {
        "host": host_id(),
        "pid": str(proc.pid),
        "marker": mark,
        "resource": key,
        "deadline_s": f"{spec['deadline']:g}",
    }
    if "file" in spec:
        changed["file"] = spec["file"]
    _watch_from_here(inp.model_copy(update={"record": inp.record.model_copy(update={"changed": changed})}))
    changed |= {k: str(v) for k, v in said.items() if k in ("workers", "rss_bytes", "bytes", "connections_held")}
    return inp.record.model_copy(
        update={"changed": changed, "output": f"{_describe(fault, spec, said)} (pid {proc.pid})"}
    )


async def _start(spec: dict[str, Any], mark: str, name: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Start the load and read its first line: ``{"ready": ...}`` or ``{"error": ...}``."""
    status_file_dir = Path(spec["status"]).parent
    status_file_dir.mkdir(parents=True, exist_ok=True)
    # Started from this (the event loop's) thread: the parent-death signal follows the thread that forks.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        LOAD_MODULE,
        mark,
        json.dumps(spec),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    _children[name] = proc
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    try:
        said = json.loads(line) if line else {"error": f"the load exited ({await proc.wait()}) before it held"}
    except ValueError:
        said = {"error": f"the load said {line[:200]!r}"}
    return proc, said


async def _undo(fault: FaultBase, inp: FaultInput, mark: str, name: str) -> None:
    """What an apply that did not finish leaves: its load stopped, its file removed, its lock released."""
    await _stop_load(mark, name)
    await asyncio.to_thread(_remove_file, fault, inp)
    _release_locks(inp)
    with contextlib.suppress(FileNotFoundError):
        status_file(inp.run_id, inp.index).unlink()


def _describe(fault: FaultBase, spec: dict[str, Any], said: dict[str, Any]) -> str:
    if isinstance(fault, CpuFault):
        return f"burning {spec['workers']} process(es) at {spec['duty'] * 100:.0f}% each"
    if isinstance(fault, MemoryFault):
        return f"holding {spec['bytes']} B of memory ({said.get('rss_bytes', '?')} B resident)"
    if isinstance(fault, DiskFillFault):
        return f"wrote {said.get('bytes', '?')} B to {spec['file']}"
    if isinstance(fault, ConnectionsFault):
        return f"holding {said.get('connections_held', '?')} connection(s) to {fault.address}"
    return f"writing {spec['rate']} B/s to {spec['file']}"


def _remove_file(fault: FaultBase, inp: FaultInput) -> bool:
    """Remove the fault's own file, if any (never following a symlink); whether one was there.

    Where its path resolves now, and where the apply said it wrote it (the path's symlink may have changed since):
    only a file of exactly this fault's name.
    """
    target = written_file(fault, inp.run_id, inp.index)
    if target is None:
        return False
    places = {target}
    recorded = inp.record.changed.get("file")
    if recorded and os.path.basename(recorded) == target.name and os.path.isabs(recorded):
        places.add(Path(recorded))
    removed = False
    for place in places:
        with contextlib.suppress(FileNotFoundError):
            place.unlink()
            removed = True
    return removed


async def revert(inp: FaultInput) -> FaultRecord:
    """Stop the load (found by its marker), remove its file, release its lock; record what it held. Idempotent.

    Raises:
        RevertError: the fault ran on another host (retried on one of its site), or a process of it survived.
    """
    _, fault = narrow(inp, HostTarget, *FAULTS)
    applied_on = inp.record.changed.get("host") or inp.before.get("host")
    if applied_on is not None and applied_on != host_id():
        raise RevertError(f"this fault's load ran on another host ({applied_on}), this one is {host_id()}: retried")
    mark, name = marker(inp.run_id, inp.index), slug(inp.run_id, inp.index)
    _watched.pop(name, None)
    before = await asyncio.to_thread(_read_status, inp.run_id, inp.index)
    found, clean = await _stop_load(mark, name)
    if load_pids(mark):
        raise RevertError(f"the load {mark} is still running after SIGKILL")
    status = {**before, **await asyncio.to_thread(_read_status, inp.run_id, inp.index)}
    removed = await asyncio.to_thread(_remove_file, fault, inp)
    _release_locks(inp)
    with contextlib.suppress(FileNotFoundError):
        status_file(inp.run_id, inp.index).unlink()
    if found:
        how = "stopped" if clean else "killed"
        said = f"{how} the load ({found} process(es)); held: {_held_text(status)}"
    elif status:
        said = f"the load had already ended ({status.get('state', 'its worker died')}); held: {_held_text(status)}"
    else:
        said = "no load was running"
    if removed:
        said += f"; removed {written_file(fault, inp.run_id, inp.index)}"
    changed = {**inp.record.changed, **_held(status)}
    return inp.record.model_copy(update={"changed": changed, "output": said})


# --- loads whose drill is gone --------------------------------------------------------------------------------


def _watch_from_here(inp: FaultInput) -> None:
    """Look after ``inp``'s load from this worker: it ends once its drill's workflow is closed or gone (terminated,
    say, with no rollback to revert it), as a heartbeating hold would. Outside a worker (no client): not watched."""
    global _watcher
    try:
        client = activity.client()
    except RuntimeError:
        return
    _watched[slug(inp.run_id, inp.index)] = inp
    if _watcher is None or _watcher.done():
        _watcher = asyncio.get_running_loop().create_task(_watch(client))


async def _watch(client: Client) -> None:
    while _watched:
        await asyncio.sleep(WATCH_EVERY)
        for name, inp in list(_watched.items()):
            if not load_pids(marker(inp.run_id, inp.index)):
                _watched.pop(name, None)  # ended (reverted elsewhere, its deadline, or killed)
                continue
            try:
                if not await _workflow_closed(client, inp.run_id):
                    continue
                log.warning(
                    "host load of run %s fault %d: its drill is closed, the load is stopped", inp.run_id, inp.index
                )
                await revert(inp)
            except Exception:  # never let one look end the watch; the lease and the deadline remain
                log.exception("host load of run %s fault %d: watch failed", inp.run_id, inp.index)
                continue
            _watched.pop(name, None)


async def _workflow_closed(client: Client, run_id: str) -> bool:
    """The drill's workflow is closed or gone, as Temporal answers; ``False`` when it does not answer (the lease
    takes care of that)."""
    try:
        described = await client.get_workflow_handle(run_id).describe(rpc_timeout=timedelta(seconds=2))
    except RPCError as err:
        return err.status == RPCStatusCode.NOT_FOUND
    status = described.raw_description.workflow_execution_info.status
    return status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
