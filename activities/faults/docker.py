"""Faults on ``docker`` targets: pause, stop, kill, restart, disconnect, limit_cpu, limit_memory, exec.

The engine is the one ``DOCKER_HOST`` names, else the default socket. A target is one named container, or a
random pick among the running containers that carry its ``labels`` **and** the opt-in label
``gameday.target=true`` (naming a container is consent enough; matching labels is not). Apply records, per
container, its full id and exactly what it changed (previous limits, network aliases…) in the fault record,
so the revert is exact and the report says what was touched; the pick's seed is recorded too.

``capture`` makes the pick and reads each container's state before the apply (status, the network it will
leave, its CPU and memory limits); that state travels in the workflow and the fault ledger, and is what the
revert restores, whatever an interrupted apply did. Reverts go by container id and are idempotent: a container
restarted by someone else in between is still the same container (its id and its limits survive a restart),
and one that has vanished is reported in the record, never crashed on. The docker SDK blocks: every engine
call runs in a worker thread, so the activity keeps heartbeating, and a cancelled apply waits for the engine
and undoes its partial work before it ends (a fault must never land after its revert).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import Container
from temporalio import activity

from gameday.activities.faults import narrow
from gameday.activities.faults.command import OUTPUT_LIMIT
from gameday.activities.faults.errors import ApplyError, FaultError, RevertError, TargetNotFound, UnsupportedFault
from gameday.activities.faults.supervisor import descendants
from gameday.model import budget
from gameday.model.drill import (
    OPT_IN_LABEL,
    DisconnectFault,
    DockerTarget,
    ExecFault,
    Fault,
    KillFault,
    LimitCpuFault,
    LimitMemoryFault,
    RestartFault,
    StopFault,
)
from gameday.model.kinds.docker import DOCKER_FAULTS
from gameday.model.records import FaultInput, FaultRecord, FaultState

CPU_PERIOD = 100_000
"""CFS period (µs) used for ``limit_cpu`` on a container without a ``--cpus`` limit: docker's own default."""
ID_LEN = 12
"""Short container ids, as ``docker ps`` prints them, prefix the per-container facts in the record."""

_T = TypeVar("_T")


def engine() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` names (else the default socket), API version negotiated."""
    return docker.from_env()


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class _Stopped(Exception):
    """The activity was cancelled: the thread undid its partial work and stopped."""


@dataclass
class _Job:
    """One apply or revert, run in a thread: the stop flag a cancellation sets, and the record's facts.

    ``tick`` is the last moment the worker's event loop ran; ``silent_limit`` the activity's heartbeat timeout.
    A worker frozen (SIGSTOP, a suspended VM) longer than that has been given up on by the workflow, which
    reverts from the captured state: on waking, its apply must not go on, and undoes what it did.
    """

    inp: FaultInput
    target: DockerTarget
    stop: threading.Event = field(default_factory=threading.Event)
    tick: float = field(default_factory=time.monotonic)
    silent_limit: float | None = None

    def given_up(self) -> bool:
        if self.silent_limit is not None and time.monotonic() - self.tick > self.silent_limit:
            self.stop.set()
        return self.stop.is_set()


# --- selection ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The containers a fault hits, and how they were picked (for the record).

    Attributes:
        containers: the picked containers, in name order.
        facts: how the pick was made: ``seed``, ``candidates``, ``selection`` (labelled targets only).
    """

    containers: list[Container]
    facts: dict[str, str]


def select(client: docker.DockerClient, target: DockerTarget) -> Selection:
    """The containers ``target`` names now.

    Raises:
        TargetNotFound: no such container, or no running container matches the labels.
        ApplyError: matching containers lack the opt-in label (refused), or the engine cannot be asked.
    """
    if target.container is not None:
        try:
            return Selection([client.containers.get(target.container)], {})
        except docker.errors.NotFound as err:
            raise TargetNotFound(f"no container named {target.container!r} on {engine_address()}") from err
    labels = target.labels or {}
    wanted = [f"{k}={v}" for k, v in sorted(labels.items())]
    matching = sorted(client.containers.list(filters={"label": wanted}), key=lambda c: c.name or "")
    opted_in = [c for c in matching if (c.labels or {}).get(OPT_IN_LABEL) == "true"]
    shown = ", ".join(wanted)
    if not opted_in:
        if matching:
            names = ", ".join(c.name or c.id or "?" for c in matching)
            raise ApplyError(
                f"refusing: {len(matching)} running container(s) match {shown} ({names}) but none carries "
                f"the opt-in label {OPT_IN_LABEL}=true; label them, or name one under 'container'"
            )
        raise TargetNotFound(f"no running container matches {shown} on {engine_address()}")
    if len(opted_in) > budget.MAX_CONTAINERS:
        # Every match is named in the record (and every pick's changes): refused before anything is touched.
        raise ApplyError(
            f"refusing: {len(opted_in)} opted-in running containers match {shown}; a selection may match at most "
            f"{budget.MAX_CONTAINERS} (see Limits in docs/DRILL_FORMAT.md): narrow the labels"
        )
    seed = target.seed if target.seed is not None else random.SystemRandom().randrange(2**32)
    if target.count is not None:
        k = target.count
    elif target.percent is not None:
        k = math.ceil(target.percent * len(opted_in))
    else:
        k = len(opted_in)
    picked = random.Random(seed).sample(opted_in, min(k, len(opted_in)))
    picked.sort(key=lambda c: c.name or "")
    skipped = len(matching) - len(opted_in)
    facts = {
        "seed": str(seed),
        "candidates": ", ".join(c.name or "" for c in opted_in),
        "selection": f"{len(picked)} of {len(opted_in)} opted-in container(s) matching {shown}"
        + (f" ({skipped} without the opt-in label left alone)" if skipped else ""),
    }
    return Selection(picked, facts)


# --- one action on one container: apply records facts, revert reads them ----------------------------------

Facts = dict[str, str]


def _label(c: Container) -> str:
    return f"{c.name} ({(c.id or '')[:ID_LEN]})"


def _status(c: Container) -> str:
    c.reload()
    return str(c.status)


_STATE_ACTIONS = frozenset({"pause", "stop", "kill", "restart"})
"""Actions whose revert needs only the container's status before: safe to revert on a call whose answer was lost."""


def _status_facts(c: Container) -> Facts:
    """What every action's revert needs, read before the engine call: the name and the status."""
    return {"name": c.name or "", "status_before": _status(c)}


def _apply_one(client: docker.DockerClient, fault: Fault, c: Container, facts: Facts) -> tuple[Facts, str]:
    """Apply ``fault`` to one container (``facts``: :func:`_status_facts`); return the facts its revert needs and a
    line for the report."""
    was = facts["status_before"]
    if fault.action == "pause":
        c.pause()
        return facts, "paused"
    if isinstance(fault, StopFault):
        c.stop(timeout=math.ceil(fault.timeout.total_seconds()))
        return facts, f"stopped (was {was})"
    if isinstance(fault, KillFault):
        c.kill(signal=fault.signal)
        return facts, f"sent {fault.signal}"
    if isinstance(fault, RestartFault):
        c.restart(timeout=math.ceil(fault.timeout.total_seconds()))
        return facts, "restarted"
    if isinstance(fault, DisconnectFault):
        return _disconnect(client, fault, c, facts)
    if isinstance(fault, LimitCpuFault):
        return _limit_cpu(client, fault, c, facts)
    if isinstance(fault, LimitMemoryFault):
        return _limit_memory(c, fault, facts)
    if isinstance(fault, ExecFault):
        code, output = _exec(client, c, fault.run, fault.timeout.total_seconds())
        if code != 0:
            raise ApplyError(f"`{fault.run}` in {_label(c)} {_exit_words(code)}: {output}")
        facts["revert"] = fault.revert  # the revert runs exactly what was declared when the fault was applied
        return facts, f"ran `{fault.run}`" + (f": {output}" if output else "")
    raise UnsupportedFault(f"action {fault.action!r} does not apply to a docker target")


def _revert_one(client: docker.DockerClient, fault: Fault, c: Container, facts: Facts) -> str:
    """Undo ``fault`` on one container from its recorded facts; a no-op when it is already as it should be."""
    status = _status(c)
    was = facts.get("status_before", "running")
    if fault.action == "pause":
        if status != "paused":
            return f"not paused ({status}): nothing to unpause"
        if was == "paused":
            return "paused, as it was before the fault: left as it is"
        c.unpause()
        return "unpaused"
    if isinstance(fault, StopFault | KillFault | RestartFault):
        if status in ("running", "paused", "restarting"):
            return f"{status}: nothing to start"
        if was not in ("running", "paused", "restarting"):
            return f"{status}, as it was before the fault ({was}): left as it is"
        c.start()
        if was == "paused":
            c.pause()
            return "started and paused again, as it was before the fault"
        return "started"
    if isinstance(fault, DisconnectFault):
        return _reconnect(client, fault, c, facts)
    if isinstance(fault, LimitCpuFault):
        return _restore_cpu(client, c, facts)
    if isinstance(fault, LimitMemoryFault):
        return _restore_memory(client, c, facts)
    if isinstance(fault, ExecFault):
        command = facts.get("revert", fault.revert)
        if status != "running":
            raise RevertError(f"{_label(c)} is {status}: cannot run the revert `{command}` in it yet")
        code, output = _exec(client, c, command, fault.timeout.total_seconds())
        if code != 0:
            raise RevertError(f"`{command}` in {_label(c)} {_exit_words(code)}: {output}")
        return f"ran `{command}`" + (f": {output}" if output else "")
    raise UnsupportedFault(f"action {fault.action!r} does not apply to a docker target")


def _network_facts(client: docker.DockerClient, fault: DisconnectFault, c: Container) -> Facts:
    try:
        network = client.networks.get(fault.network)
    except docker.errors.NotFound as err:
        raise ApplyError(f"no network {fault.network!r} on {engine_address()}") from err
    endpoint = (c.attrs.get("NetworkSettings", {}).get("Networks") or {}).get(network.name)
    if endpoint is None:
        raise ApplyError(f"{_label(c)} is not connected to network {network.name!r}")
    # The engine adds the short id as an alias on every connect: keep only the aliases someone chose.
    aliases = [a for a in endpoint.get("Aliases") or [] if a != (c.id or "")[:ID_LEN]]
    ipam = endpoint.get("IPAMConfig") or {}
    return {
        "network": network.name or "",
        "network_id": network.id or "",
        "aliases": ",".join(aliases),
        "ipv4_address": ipam.get("IPv4Address") or "",
        "ip_address": endpoint.get("IPAddress") or "",
    }


def _cpu_facts(c: Container) -> Facts:
    host = c.attrs.get("HostConfig", {})
    return {
        "nano_cpus": str(host.get("NanoCpus") or 0),
        "cpu_quota": str(host.get("CpuQuota") or 0),
        "cpu_period": str(host.get("CpuPeriod") or 0),
    }


def _memory_facts(c: Container) -> Facts:
    host = c.attrs.get("HostConfig", {})
    return {"memory": str(host.get("Memory") or 0), "memory_swap": str(host.get("MemorySwap") or 0)}


def _facts_before(client: docker.DockerClient, fault: Fault, c: Container) -> Facts:
    """What ``capture`` reads of one container: its status, and what the fault's action will change."""
    facts: Facts = {"name": c.name or "", "status_before": _status(c)}
    if isinstance(fault, DisconnectFault):
        facts.update(_network_facts(client, fault, c))
    elif isinstance(fault, LimitCpuFault):
        facts.update(_cpu_facts(c))
    elif isinstance(fault, LimitMemoryFault):
        facts.update(_memory_facts(c))
    return facts


def _disconnect(client: docker.DockerClient, fault: DisconnectFault, c: Container, facts: Facts) -> tuple[Facts, str]:
    facts.update(_network_facts(client, fault, c))
    client.networks.get(facts["network_id"] or facts["network"]).disconnect(c)
    return facts, f"disconnected from {facts['network']} (address {facts['ip_address'] or 'none'})"


def _reconnect(client: docker.DockerClient, fault: DisconnectFault, c: Container, facts: Facts) -> str:
    name = facts.get("network", fault.network)
    if name in (c.attrs.get("NetworkSettings", {}).get("Networks") or {}):
        return f"connected to {name}: nothing to reconnect"
    try:
        network = client.networks.get(facts.get("network_id") or name)
    except docker.errors.NotFound:
        return f"network {name} is gone: cannot reconnect (reported, not retried)"
    aliases = [a for a in facts.get("aliases", "").split(",") if a]
    network.connect(c, aliases=aliases or None, ipv4_address=facts.get("ipv4_address") or None)
    return f"reconnected to {name}" + (f" with aliases {', '.join(aliases)}" if aliases else "")


def _limit_cpu(client: docker.DockerClient, fault: LimitCpuFault, c: Container, facts: Facts) -> tuple[Facts, str]:
    facts.update(_cpu_facts(c))
    if int(facts["nano_cpus"]):
        # A container started with --cpus refuses CFS period/quota updates: change NanoCpus itself.
        _update_raw(client, c, {"NanoCpus": int(fault.cpus * 1e9)})
    else:
        c.update(cpu_period=CPU_PERIOD, cpu_quota=max(1000, int(fault.cpus * CPU_PERIOD)))
    before = _cpu_words(facts)
    return facts, f"CPU limited to {fault.cpus:g} (was {before})"


def _restore_cpu(client: docker.DockerClient, c: Container, facts: Facts) -> str:
    if "nano_cpus" not in facts:
        return "previous CPU limits not recorded (apply did not finish): left as they are"
    if _cpu_facts(c) == {k: facts[k] for k in ("nano_cpus", "cpu_quota", "cpu_period")}:
        return f"CPU limits as before the fault ({_cpu_words(facts)}): nothing to restore"
    nano, quota, period = int(facts["nano_cpus"]), int(facts["cpu_quota"]), int(facts["cpu_period"])
    if nano:
        _update_raw(client, c, {"NanoCpus": nano})
    else:
        # 0 means "unchanged" to the engine; -1 is its word for "no quota".
        c.update(cpu_period=period or CPU_PERIOD, cpu_quota=quota if quota > 0 else -1)
    return f"CPU limits restored ({_cpu_words(facts)})"


def _cpu_words(facts: Facts) -> str:
    nano, quota, period = int(facts["nano_cpus"]), int(facts["cpu_quota"]), int(facts["cpu_period"])
    if nano:
        return f"{nano / 1e9:g} CPUs"
    if quota > 0:
        return f"quota {quota}µs per {period or CPU_PERIOD}µs"
    return "unlimited"


def _limit_memory(c: Container, fault: LimitMemoryFault, facts: Facts) -> tuple[Facts, str]:
    facts.update(_memory_facts(c))
    # Swap capped at the limit too, or the container would only swap instead of feeling the limit.
    c.update(mem_limit=fault.memory, memswap_limit=fault.memory)
    previous = int(facts["memory"])
    return facts, f"memory limited to {fault.memory} bytes (was {previous or 'unlimited'})"


def _restore_memory(client: docker.DockerClient, c: Container, facts: Facts) -> str:
    if "memory" not in facts:
        return "previous memory limits not recorded (apply did not finish): left as they are"
    now = _memory_facts(c)
    if now == {k: facts[k] for k in ("memory", "memory_swap")} or (facts["memory"] == "0" and now["memory"] == "0"):
        return f"memory limits as before the fault ({int(facts['memory']) or 'unlimited'}): nothing to restore"
    memory, swap = int(facts["memory"]), int(facts["memory_swap"])
    note = ""
    if memory == 0:
        # The engine cannot remove a memory limit once set (0 means "unchanged"): the host's memory is the
        # nearest it accepts, unlimited in effect.
        memory = swap = int(client.info().get("MemTotal") or 0)
        note = f"; the engine cannot remove a limit, so it is now the host's memory ({memory} bytes)"
    elif swap == 0:
        swap = 2 * memory  # what the engine itself sets when only a memory limit is given
    if swap == -1:
        # cgroup v1 refuses to raise the memory limit above the current swap limit: raise both first.
        c.update(mem_limit=memory, memswap_limit=2 * memory)
    c.update(mem_limit=memory, memswap_limit=swap)
    return f"memory limits restored ({int(facts['memory']) or 'unlimited'}, swap {facts['memory_swap']}){note}"


def _update_raw(client: docker.DockerClient, c: Container, body: dict[str, Any]) -> None:
    """``POST /containers/{id}/update`` with fields the SDK's ``update`` lacks (``NanoCpus``)."""
    api = client.api
    response = api.post(f"{api.base_url}/v{api.api_version}/containers/{c.id}/update", json=body)
    try:
        response.raise_for_status()
    except Exception as err:
        raise docker.errors.create_api_error_from_http_exception(err) from err


def _exec(client: docker.DockerClient, c: Container, command: str, timeout: float) -> tuple[int | None, str]:
    """Run ``sh -c command`` in the container; on timeout kill it (when its pid is visible here)."""
    api = client.api
    exec_id = api.exec_create(c.id, ["sh", "-c", command], stdout=True, stderr=True)["Id"]
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        raw = pool.submit(api.exec_start, exec_id).result(timeout=timeout)
    except FutureTimeout:
        _kill_exec(int(api.exec_inspect(exec_id).get("Pid") or 0))
        return None, f"timed out after {timeout:g}s"
    finally:
        pool.shutdown(wait=False)
    output = (raw or b"").decode(errors="replace")[-OUTPUT_LIMIT:].strip()
    return int(api.exec_inspect(exec_id).get("ExitCode") or 0), output


def _kill_exec(pid: int) -> None:
    """SIGKILL an exec'd process and everything below it (when the engine's pids are visible here)."""
    if pid <= 1:
        return
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            os.kill(each, signal.SIGKILL)


def _exit_words(code: int | None) -> str:
    return "timed out (killed)" if code is None else f"exited with code {code}"


# --- the provider: apply / revert over the selection, in a thread -------------------------------------------


def _narrow(inp: FaultInput) -> DockerTarget:
    return narrow(inp, DockerTarget, *DOCKER_FAULTS)[0]


async def capture(inp: FaultInput) -> Facts:
    """Pick the containers (the pick is final: apply and revert go by these ids) and read, per container, its
    status and what the action will change (networks, CPU, memory), before anything is touched.

    Raises:
        TargetNotFound: no such container, or nothing matches the labels.
        ApplyError: refused (no opt-in label), not on the fault's network, or the engine cannot be reached.
    """
    return await _in_thread(_Job(inp, _narrow(inp)), _capture_all)


async def apply(inp: FaultInput) -> FaultRecord:
    """Apply the fault to every captured container and record, per container, its id and what changed.

    A failure (or cancellation) part-way undoes what was already done before raising, so a failed apply
    leaves nothing behind for the rollback to guess at.

    Raises:
        TargetNotFound: no such container, or nothing matches the labels.
        ApplyError: refused (no opt-in label), or the engine refused the action.
    """
    job = _Job(inp, _narrow(inp))
    changed, lines = await _in_thread(job, _apply_all, undo=_undo_applied)
    return inp.record.model_copy(update={"changed": changed, "output": "\n".join(lines)})


async def revert(inp: FaultInput) -> FaultRecord:
    """Bring every captured container back to its state before the fault; report vanished ones; idempotent.

    The apply's record is never trusted to say what an interrupted apply did: each container's actual state is
    compared with the one captured before the apply, and restored. An apply that did not end well (its worker
    died or froze) may still have an engine call running (a ``stop`` waiting out its timeout, an ``exec``):
    the revert waits for the first, kills the second, then compares. Without a capture (drills started before
    it) a named container is found again; a labelled pick cannot be known, so nothing is touched and the
    record says so.

    Raises:
        RevertError: the engine could not be reached or refused (retried by Temporal).
    """
    job = _Job(inp, _narrow(inp))
    changed, lines = await _in_thread(job, _revert_all)
    return inp.record.model_copy(update={"changed": changed, "output": "\n".join(lines)})


async def _in_thread(job: _Job, work: Callable[[_Job], _T], *, undo: Callable[[_Job, _T], object] | None = None) -> _T:
    job.silent_limit = _heartbeat_timeout()
    ticking = asyncio.create_task(_tick(job))
    task = asyncio.ensure_future(asyncio.to_thread(work, job))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        job.stop.set()
        # Engine calls cannot be interrupted: let the thread finish (an apply undoes its partial work on
        # `stop`), so nothing lands after the revert this cancellation leads to.
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None and undo is not None:
            # It finished just as the cancel came: its result will never reach the workflow, so undo it here.
            await asyncio.to_thread(undo, job, task.result())
        raise
    finally:
        ticking.cancel()


def _heartbeat_timeout() -> float | None:
    try:
        timeout = activity.info().heartbeat_timeout
    except RuntimeError:
        return None  # not in an activity (the sweep): nobody gives up on us
    return timeout.total_seconds() if timeout else None


async def _tick(job: _Job) -> None:
    while True:
        job.given_up()  # a loop silent for a whole heartbeat timeout was frozen: the workflow has moved on
        job.tick = time.monotonic()
        await asyncio.sleep(0.2)


def _undo_applied(job: _Job, result: tuple[Facts, list[str]]) -> object:
    record = job.inp.record.model_copy(update={"changed": result[0], "state": FaultState.APPLIED})
    return _revert_all(_Job(job.inp.model_copy(update={"record": record}), job.target))


def _prefixed(c: Container, facts: Facts) -> Facts:
    return {f"{(c.id or '')[:ID_LEN]}.{k}": v for k, v in facts.items()}


def _facts_of(facts: Facts, short: str) -> Facts:
    return {k.split(".", 1)[1]: v for k, v in facts.items() if k.startswith(short + ".")}


def _capture_all(job: _Job) -> Facts:
    client = _connect(ApplyError)
    try:
        selection = select(client, job.target)
        before: Facts = dict(selection.facts)
        before["captured_at"] = f"{time.time():.3f}"
        before["containers"] = " ".join(c.id or "" for c in selection.containers)
        before["names"] = ", ".join(c.name or "" for c in selection.containers)
        for c in selection.containers:
            before.update(_prefixed(c, _facts_before(client, job.inp.fault, c)))
        return before
    except FaultError:
        raise
    except Exception as err:
        raise ConnectionError(_engine_words(err)) from err  # retried: reading is harmless
    finally:
        client.close()


def _chosen(client: docker.DockerClient, job: _Job) -> Selection:
    """The containers captured before the apply; without a capture, the target's pick now."""
    before = job.inp.before
    if "containers" not in before:
        return select(client, job.target)
    picked = []
    for cid in before["containers"].split():
        try:
            picked.append(client.containers.get(cid))
        except docker.errors.NotFound as err:
            name = before.get(f"{cid[:ID_LEN]}.name", cid[:ID_LEN])
            raise TargetNotFound(f"container {name} vanished between its pick and the fault") from err
    return Selection(picked, {k: before[k] for k in ("seed", "candidates", "selection") if k in before})


def _apply_all(job: _Job) -> tuple[Facts, list[str]]:
    fault = job.inp.fault
    client = _connect(ApplyError)
    done: list[tuple[Container, Facts]] = []
    in_flight: tuple[Container, Facts] | None = None
    try:
        selection = _chosen(client, job)
        changed: Facts = dict(selection.facts)
        lines = [selection.facts["selection"] + f", seed {selection.facts['seed']}"] if selection.facts else []
        for c in selection.containers:
            if job.given_up():
                raise _Stopped()
            before = _status_facts(c)
            if fault.action in _STATE_ACTIONS:
                # An engine call can fail on our side (a read timeout) after the engine did it: this container is
                # undone with the others if the apply goes no further (its revert is a no-op if nothing changed).
                in_flight = (c, before)
            facts, line = _apply_one(client, fault, c, before)
            in_flight = None
            done.append((c, facts))
            lines.append(f"{_label(c)}: {line}")
        if job.given_up():
            raise _Stopped()  # cancelled while the last call ran: the workflow will never see this record
        changed["containers"] = " ".join(c.id or "" for c, _ in done)
        changed["names"] = ", ".join(c.name or "" for c, _ in done)
        for c, facts in done:
            changed.update(_prefixed(c, facts))
        return changed, lines
    except (_Stopped, Exception) as err:
        undone = _undo(client, fault, [*done, in_flight] if in_flight is not None else done)
        if isinstance(err, _Stopped | FaultError):
            if isinstance(err, FaultError) and undone:
                raise type(err)(f"{err}; {undone}") from err
            raise
        raise ApplyError(f"{_engine_words(err)}{'; ' + undone if undone else ''}") from err
    finally:
        client.close()


def _undo(client: docker.DockerClient, fault: Fault, done: list[tuple[Container, Facts]]) -> str:
    """Best effort: revert the containers a failed or cancelled apply already changed, newest first."""
    lines = []
    for c, facts in reversed(done):
        try:
            lines.append(f"{_label(c)}: {_revert_one(client, fault, c, facts)}")
        except Exception as err:
            lines.append(f"{_label(c)}: could not undo: {_engine_words(err)}")
    return ("undid: " + "; ".join(lines)) if lines else ""


def _revert_all(job: _Job) -> tuple[Facts, list[str]]:
    inp, fault, before = job.inp, job.inp.fault, job.inp.before
    changed = dict(inp.record.changed)
    ids = (before.get("containers") or changed.get("containers", "")).split()
    # Only an apply that returned its record is known to have ended: anything else may have left an engine
    # call running, or done more than it recorded (the FAILED record of a dead worker's apply included).
    ended = inp.record.state in (FaultState.APPLIED, FaultState.REVERTED)
    if not ids and job.target.container is None:
        return changed, ["nothing recorded (the apply never finished) and a labelled pick cannot be known: "
                         "no container touched"]  # fmt: skip
    client = _connect(RevertError)
    lines: list[str] = []
    vanished: list[str] = []
    try:
        if not ids:
            try:
                ids = [c.id or "" for c in select(client, job.target).containers]
            except TargetNotFound as err:
                return changed, [f"nothing recorded, and {err}: nothing to revert"]
        for cid in ids:
            short = cid[:ID_LEN]
            facts = {**_facts_of(changed, short), **_facts_of(before, short)}  # the state before wins
            try:
                c = client.containers.get(cid)
            except docker.errors.NotFound:
                vanished.append(cid)
                lines.append(f"{facts.get('name', short)} ({short}): vanished: nothing to revert")
                continue
            settled = "" if ended else _settle(client, job, c)
            done = _revert_one(client, fault, c, facts)
            lines.append(f"{_label(c)}: " + (f"{settled}; {done}" if settled else done))
    except FaultError:
        raise
    except Exception as err:
        raise RevertError(_engine_words(err)) from err
    finally:
        client.close()
    if vanished:
        changed["vanished"] = " ".join(vanished)
    return changed, lines


SETTLE_MARGIN = 10.0
"""Seconds past a ``stop``/``restart`` timeout the engine may take to finish it (kill, wait, start)."""


def _settle(client: docker.DockerClient, job: _Job, c: Container) -> str:
    """Let an interrupted apply's engine work end before comparing states; returns what it did, in words.

    A worker that dies does not stop what it asked the engine: a ``stop`` goes on for its whole timeout and
    then stops the container, after a revert that found it running. The engine's events say whether one was
    asked since the capture (``kill``) and whether it has ended (``stop``/``restart``). An ``exec`` still
    running the fault's command is killed, with everything it started, so it cannot finish after the revert.
    """
    fault = job.inp.fault
    if isinstance(fault, ExecFault):
        return _kill_interrupted_exec(client, c, fault.run)
    if not isinstance(fault, StopFault | RestartFault):
        return ""  # pause, kill, disconnect, update: one quick engine call, over long before a revert runs
    since = float(job.inp.before.get("captured_at") or time.time() - fault.timeout.total_seconds() - SETTLE_MARGIN)
    ending = "stop" if isinstance(fault, StopFault) else "restart"
    waited = False
    while True:
        events = list(
            client.events(
                since=int(since) - 1, until=int(time.time()) + 1, filters={"container": c.id or ""}, decode=True
            )
        )
        asked = [e for e in events if e.get("Action") == "kill"]
        if not asked:
            return ""
        last = int(asked[-1].get("timeNano") or 0)
        if any(e.get("Action") == ending and int(e.get("timeNano") or 0) >= last for e in events):
            return f"waited for the interrupted {ending} to end" if waited else ""
        if time.time() > last / 1e9 + fault.timeout.total_seconds() + SETTLE_MARGIN or job.stop.is_set():
            return ""
        waited = True
        time.sleep(0.2)


def _kill_interrupted_exec(client: docker.DockerClient, c: Container, command: str) -> str:
    c.reload()
    killed = []
    for exec_id in c.attrs.get("ExecIDs") or []:
        with contextlib.suppress(docker.errors.NotFound):
            info = client.api.exec_inspect(exec_id)
            config = info.get("ProcessConfig") or {}
            if info.get("Running") and config.get("entrypoint") == "sh" and config.get("arguments") == ["-c", command]:
                _kill_exec(int(info.get("Pid") or 0))
                killed.append(str(info.get("Pid")))
    return f"killed the interrupted `{command}` (pid {', '.join(killed)})" if killed else ""


def _connect(error: type[FaultError]) -> docker.DockerClient:
    try:
        return engine()
    except docker.errors.DockerException as err:
        raise error(f"cannot reach the Docker engine at {engine_address()}: {err}") from err


def _engine_words(err: BaseException) -> str:
    if isinstance(err, docker.errors.APIError):
        return f"the Docker engine refused: {err.explanation or err}"
    if isinstance(err, docker.errors.DockerException):
        return f"Docker engine at {engine_address()}: {err}"
    return f"{type(err).__name__}: {err}"
