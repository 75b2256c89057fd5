"""The ``proxy`` target kind: a TCP fault proxy gameday holds, and its toxics (what Toxiproxy calls them).

Faults: ``activities/faults/proxy.py``; the proxy itself: ``activities/proxy/``, held by ``workflows/proxy_holds.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from gameday.model.base import Strict
from gameday.model.kinds.base import FaultBase, TargetKindSpec, spelled_lock_key
from gameday.model.units import Duration, Percent, format_duration


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT like 127.0.0.1:15432, got {value!r}")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]
"""``host:port`` (``[::1]:80`` for IPv6)."""


class ProxyTarget(Strict):
    """A TCP fault proxy that gameday runs: clients connect to ``listen``, it forwards to ``upstream``.

    The worker holds the proxy for the whole drill (point the system under test at ``listen``); toxic
    faults change what flows through it.
    """

    listen: HostPort
    upstream: HostPort


class ToxicFault(FaultBase):
    """What every toxic shares: the direction it acts on and the share of connections it affects."""

    stream: Literal["downstream", "upstream"] = "downstream"
    """``downstream``: upstream server → client (Toxiproxy's default); ``upstream``: client → server."""
    toxicity: Percent = 1.0
    """Share of connections the toxic applies to, each decided once (Toxiproxy's ``toxicity``)."""


class LatencyFault(ToxicFault):
    """Delay each chunk of data by ``latency`` ± ``jitter`` (uniform)."""

    action: Literal["latency"]
    latency: Duration
    jitter: Duration = timedelta(0)


class BandwidthFault(ToxicFault):
    """Pass data at most at ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy)."""

    action: Literal["bandwidth"]
    rate: int = Field(ge=1)


class ResetFault(ToxicFault):
    """Reset the connection (TCP RST, "connection reset by peer") ``timeout`` after data next flows."""

    action: Literal["reset"]
    timeout: Duration = timedelta(0)


class BlackholeFault(ToxicFault):
    """Accept, then never answer: data is dropped; the connection is closed after ``timeout`` (0: never)."""

    action: Literal["blackhole"]
    timeout: Duration = timedelta(0)


class SliceFault(ToxicFault):
    """Split data into pieces of ``average_size`` ± ``size_variation`` bytes, ``delay`` apart."""

    action: Literal["slice"]
    average_size: int = Field(default=64, ge=1)
    size_variation: int = Field(default=0, ge=0)
    delay: Duration = timedelta(0)

    @model_validator(mode="after")
    def _variation_below_average(self) -> SliceFault:
        if self.size_variation >= self.average_size:
            raise ValueError("'size_variation' must be smaller than 'average_size'")
        return self


class CloseAfterFault(ToxicFault):
    """Close each connection once ``bytes`` bytes have passed in the stream (Toxiproxy's ``limit_data``)."""

    action: Literal["close_after"]
    bytes: int = Field(ge=0)


TOXIC_FAULTS: tuple[type[FaultBase], ...] = (
    LatencyFault,
    BandwidthFault,
    ResetFault,
    BlackholeFault,
    SliceFault,
    CloseAfterFault,
)


def describe(spec: ProxyTarget) -> str:
    return f"proxy {spec.listen} -> {spec.upstream}"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    assert isinstance(fault, ToxicFault)
    params = fault.model_dump(exclude={"action", "target", "duration", "name", "stream", "toxicity"})
    shown = ", ".join(f"{k} {_shown(v)}" for k, v in params.items())
    share = f", {fault.toxicity * 100:g}% of connections" if fault.toxicity < 1 else ""
    return f"add toxic {fault.action} ({shown}) {fault.stream}{share}", "remove the toxic"


def _shown(value: object) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)


KIND = TargetKindSpec(
    key="proxy",
    model=ProxyTarget,
    faults=TOXIC_FAULTS,
    describe=describe,
    describe_fault=describe_fault,
    lock_key=spelled_lock_key("proxy"),
    provider="gameday.activities.faults.proxy",
    held_by_worker=True,
)
