"""Toxic faults on a ``proxy`` target: add a toxic to the proxy this worker holds; the revert removes it.

The proxy is started in preflight by ``hold_proxy`` and lives in that worker process, so ``apply_fault``
and ``revert_fault`` for proxy targets must be sent to that worker's own task queue (see
``activities/proxy``). Each fault's toxic is named after the fault's index, so a revert removes exactly it.
A revert that finds no proxy here is done: the proxy stopped, and took its toxics with it.

How the toxics map to Toxiproxy's (type, attributes):

    latency      latency (latency, jitter)         bandwidth  bandwidth (rate, KB/s)
    reset        reset_peer (timeout)              blackhole  timeout (timeout)
    slice        slicer (average_size, size_variation, delay)
    close_after  limit_data (bytes)
"""

from __future__ import annotations

import random

from temporalio import activity

from gameday.activities.faults import narrow
from gameday.activities.faults.errors import ApplyError, RevertError, UnsupportedFault
from gameday.activities.proxy import (
    HELD,
    BandwidthToxic,
    BlackholeToxic,
    CloseAfterToxic,
    LatencyToxic,
    ResetToxic,
    SliceToxic,
    Stream,
    Toxic,
)
from gameday.model.drill import (
    BandwidthFault,
    BlackholeFault,
    CloseAfterFault,
    LatencyFault,
    ProxyTarget,
    ResetFault,
    SliceFault,
    ToxicFault,
)
from gameday.model.records import FaultInput, FaultRecord

TOXIPROXY_TYPES = {
    "latency": "latency",
    "bandwidth": "bandwidth",
    "reset": "reset_peer",
    "blackhole": "timeout",
    "slice": "slicer",
    "close_after": "limit_data",
}
"""Our action → Toxiproxy's toxic type, recorded with each fault."""


def toxic_name(inp: FaultInput) -> str:
    return f"fault-{inp.index}"


def build_toxic(fault: ToxicFault, name: str, seed: int | None = None) -> tuple[Toxic, dict[str, str]]:
    """The runtime toxic for ``fault``, and its parameters as the record keeps them (Toxiproxy's units).

    Raises:
        UnsupportedFault: ``fault`` is not a toxic.
    """
    stream, toxicity = Stream(fault.stream), fault.toxicity
    rng = random.Random(seed)
    if isinstance(fault, LatencyFault):
        latency, jitter = fault.latency.total_seconds(), fault.jitter.total_seconds()
        return LatencyToxic(name, stream, toxicity, latency=latency, jitter=jitter, rng=rng), {
            "latency_ms": f"{latency * 1000:g}",
            "jitter_ms": f"{jitter * 1000:g}",
        }
    if isinstance(fault, BandwidthFault):
        return BandwidthToxic(name, stream, toxicity, rate=fault.rate * 1000.0), {"rate_kb_s": str(fault.rate)}
    if isinstance(fault, ResetFault):
        timeout = fault.timeout.total_seconds()
        return ResetToxic(name, stream, toxicity, timeout=timeout), {"timeout_ms": f"{timeout * 1000:g}"}
    if isinstance(fault, BlackholeFault):
        timeout = fault.timeout.total_seconds()
        return BlackholeToxic(name, stream, toxicity, timeout=timeout), {"timeout_ms": f"{timeout * 1000:g}"}
    if isinstance(fault, SliceFault):
        delay = fault.delay.total_seconds()
        toxic = SliceToxic(
            name,
            stream,
            toxicity,
            average_size=fault.average_size,
            size_variation=fault.size_variation,
            delay=delay,
            rng=rng,
        )
        return toxic, {
            "average_size": str(fault.average_size),
            "size_variation": str(fault.size_variation),
            "delay_us": f"{delay * 1e6:g}",
        }
    if isinstance(fault, CloseAfterFault):
        return CloseAfterToxic(name, stream, toxicity, limit=fault.bytes), {"bytes": str(fault.bytes)}
    raise UnsupportedFault(f"action {fault.action!r} is not a proxy toxic")


def _narrow(inp: FaultInput) -> tuple[ProxyTarget, ToxicFault]:
    return narrow(inp, ProxyTarget, ToxicFault)


def _here() -> str | None:
    """The task queue this activity runs on, when it runs as an activity."""
    return activity.info().task_queue if activity.in_activity() else None


async def capture(inp: FaultInput) -> dict[str, str]:
    """Nothing to read: the proxy starts with no toxic; the revert removes the toxic by name whatever the apply did."""
    return {}


async def apply(inp: FaultInput) -> FaultRecord:
    """Add the fault's toxic to the held proxy; it acts at once, on open connections too.

    Raises:
        ApplyError: this worker holds no proxy for the run's target (``apply_fault`` went to the wrong task
            queue, or preflight did not start the proxy).
    """
    target, fault = _narrow(inp)
    held = HELD.get(inp.run_id, inp.target_name)
    if held is None:
        raise ApplyError(
            f"no proxy is held for target {inp.target_name!r} of run {inp.run_id} on this worker "
            f"(task queue {_here() or '?'}): hold_proxy must be running, and apply_fault sent to its task queue"
        )
    name = toxic_name(inp)
    toxic, params = build_toxic(fault, name, seed=held.proxy.rng.randrange(2**32))
    try:
        affected = held.proxy.add(toxic)
    except ValueError as err:
        raise ApplyError(str(err)) from err
    changed = {
        "proxy": held.proxy.address,
        "upstream": target.upstream,
        "toxic": name,
        "toxiproxy_type": TOXIPROXY_TYPES[fault.action],
        "stream": fault.stream,
        "toxicity": f"{fault.toxicity:g}",
        **params,
        "task_queue": held.task_queue,
        "open_connections": str(affected),
    }
    described = ", ".join(f"{k}={v}" for k, v in params.items())
    output = (
        f"added {fault.action} toxic {name} ({described}, {fault.stream}, toxicity {fault.toxicity:.0%}) "
        f"to proxy {held.proxy.address} → {target.upstream}; {affected} open connection(s) affected at once"
    )
    return inp.record.model_copy(update={"changed": changed, "output": output})


async def revert(inp: FaultInput) -> FaultRecord:
    """Remove the fault's toxic; what it held (delayed data) goes on at once. Idempotent.

    Raises:
        RevertError: the proxy lives in another worker (the revert was sent to the wrong task queue).
    """
    _narrow(inp)
    name = inp.record.changed.get("toxic", toxic_name(inp))
    held = HELD.get(inp.run_id, inp.target_name)
    if held is None:
        recorded, here = inp.record.changed.get("task_queue"), _here()
        if recorded and here and recorded != here:
            raise RevertError(f"the proxy holding toxic {name} lives on task queue {recorded}, not {here}")
        output = (
            f"no proxy held for target {inp.target_name!r} here: it stopped with its hold (drill over or "
            f"worker gone), and toxic {name} with it"
        )
        return inp.record.model_copy(update={"output": output})
    removed = held.proxy.remove(name)
    output = f"removed toxic {name} from proxy {held.proxy.address}" if removed else f"toxic {name} was not there"
    return inp.record.model_copy(update={"output": output})
