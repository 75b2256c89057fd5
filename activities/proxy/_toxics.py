"""Toxics: what a fault does to the data flowing one way through the proxy, chunk by chunk.

A toxic sees each chunk (bytes, and the loop time it was read) and hands on what should pass with
``emit``: later, in pieces, or not at all. Toxics are chained in the order they were added, as in
Toxiproxy, and act on existing connections as well as new ones. Removing a toxic wakes whatever it holds:
data it was delaying goes on at once (nothing is dropped on removal), so a revert is instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Stream(StrEnum):
    """Which way the data flows: Toxiproxy's ``stream``."""

    UPSTREAM = "upstream"
    """Client → upstream server."""
    DOWNSTREAM = "downstream"
    """Upstream server → client (the default: a response is delayed, a request is not)."""


@dataclass(frozen=True)
class Chunk:
    """Bytes read from one side, and the loop time they were read (latency is counted from there)."""

    data: bytes
    arrived: float


Emit = Callable[[Chunk], Awaitable[None]]


class LinkControl(Protocol):
    """What a toxic may do to the connection it acts on."""

    def close(self, *, reset: bool) -> None:
        """Close both sides of the connection: gracefully (FIN), or with a TCP reset when ``reset``."""
        ...

    def state(self, toxic: Toxic) -> dict[str, float]:
        """Per-connection scratch state of ``toxic`` (byte counts, pacing clocks)."""
        ...


@dataclass(eq=False)
class Toxic:
    """One toxic on one proxy.

    Attributes:
        name: unique on its proxy; a revert removes the toxic by this name.
        stream: the direction it acts on.
        toxicity: the share of connections it applies to, drawn once per connection.
    """

    name: str
    stream: Stream = Stream.DOWNSTREAM
    toxicity: float = 1.0
    removed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def kind(self) -> str:
        return type(self).__name__.removesuffix("Toxic").lower()

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        """Pass ``chunk`` on (the default): subclasses delay, split, drop or cut."""
        await emit(chunk)

    async def hold_eof(self) -> None:
        """Return when the end of the stream may pass this toxic (at once, but for a blackhole)."""

    async def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the toxic is removed first; return whether it was removed."""
        if seconds > 0 and not self.removed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.removed.wait(), seconds)
        return self.removed.is_set()


@dataclass(eq=False)
class LatencyToxic(Toxic):
    """Each chunk goes on ``latency`` ± ``jitter`` seconds after it was read (uniform jitter, never negative)."""

    latency: float = 0.0
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        delay = self.latency + (self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
        loop = asyncio.get_running_loop()
        # From the read time, not from now: chunks queued behind a delayed one are not delayed twice.
        await self.sleep(chunk.arrived + max(0.0, delay) - loop.time())
        await emit(chunk)


@dataclass(eq=False)
class BandwidthToxic(Toxic):
    """At most ``rate`` bytes per second, sent in pieces of a tenth of a second's worth."""

    rate: float = 1000.0

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        state = link.state(self)
        loop = asyncio.get_running_loop()
        piece = max(1, int(self.rate / 10))
        data = chunk.data
        while data:
            part, data = data[:piece], data[piece:]
            # A pacing clock per connection: idle time earns no burst beyond the present.
            state["next"] = max(state.get("next", 0.0), loop.time()) + len(part) / self.rate
            if await self.sleep(state["next"] - loop.time()):
                await emit(Chunk(part + data, chunk.arrived))  # removed: the rest goes on at once
                return
            await emit(Chunk(part, chunk.arrived))


@dataclass(eq=False)
class ResetToxic(Toxic):
    """When data next flows, wait ``timeout`` seconds, then reset the connection (TCP RST)."""

    timeout: float = 0.0

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        if await self.sleep(self.timeout):
            await emit(chunk)
            return
        link.close(reset=True)


@dataclass(eq=False)
class BlackholeToxic(Toxic):
    """Swallow every chunk (and hold the end of the stream); close ``timeout`` seconds after the first one."""

    timeout: float = 0.0

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        state = link.state(self)
        if self.timeout > 0 and "closing" not in state:
            state["closing"] = 1.0
            asyncio.get_running_loop().call_later(self.timeout, self._close_unless_removed, link)

    def _close_unless_removed(self, link: LinkControl) -> None:
        if not self.removed.is_set():
            link.close(reset=False)

    async def hold_eof(self) -> None:
        # "Never answer" includes never closing: the peer sees silence, not an end, until the toxic goes.
        await self.removed.wait()


@dataclass(eq=False)
class SliceToxic(Toxic):
    """Split each chunk into pieces of ``average_size`` ± ``size_variation`` bytes, ``delay`` seconds apart."""

    average_size: int = 64
    size_variation: int = 0
    delay: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def cuts(self, size: int) -> list[int]:
        """Piece boundaries of a chunk of ``size`` bytes, halving around the middle as Toxiproxy's slicer."""
        bounds = [0]

        def split(start: int, end: int) -> None:
            if end - start - self.average_size <= self.size_variation:
                bounds.append(end)
                return
            swing = self.rng.randint(-self.size_variation, self.size_variation) if self.size_variation else 0
            mid = start + (end - start) // 2 + swing
            split(start, mid)
            split(mid, end)

        split(0, size)
        return bounds

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        bounds = self.cuts(len(chunk.data))
        for i in range(1, len(bounds)):
            await emit(Chunk(chunk.data[bounds[i - 1] : bounds[i]], chunk.arrived))
            if i < len(bounds) - 1 and await self.sleep(self.delay):
                await emit(Chunk(chunk.data[bounds[i] :], chunk.arrived))
                return


@dataclass(eq=False)
class CloseAfterToxic(Toxic):
    """Let ``limit`` bytes through per connection, then close it (Toxiproxy's ``limit_data``)."""

    limit: int = 0

    async def pipe(self, chunk: Chunk, emit: Emit, link: LinkControl) -> None:
        state = link.state(self)
        passed = int(state.get("bytes", 0))
        allowed = chunk.data[: max(0, self.limit - passed)]
        if allowed:
            state["bytes"] = passed + len(allowed)
            await emit(Chunk(allowed, chunk.arrived))
        if passed + len(allowed) >= self.limit:
            link.close(reset=False)
