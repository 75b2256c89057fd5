"""The TCP fault proxy: accept on ``listen``, connect to ``upstream``, pass bytes both ways through toxics.

Built on asyncio protocols rather than streams: with no toxic on a direction, bytes are written straight to
the other side from ``data_received`` (the fast path), so an idle proxy costs about one extra copy. With
toxics, a direction queues chunks, stamped with their read time, and one writer task per direction runs
them through the chain in order. Flow control is end to end: when a side's write buffer or a direction's
queue fills up, the side feeding it stops being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from dataclasses import dataclass

from gameday.activities.proxy._toxics import Chunk, Stream, Toxic

QUEUE_HIGH = 256 * 1024
"""Bytes queued in one direction before its source stops being read."""
QUEUE_LOW = 64 * 1024
"""...and below which reading resumes."""
READ_SIZE = 1024 * 1024
"""Bytes one read may take from a socket."""
WRITE_HIGH = 1024 * 1024
"""Bytes a side's transport may buffer before the side feeding it stops being read (asyncio's default: 64 KiB)."""


def split_host_port(address: str) -> tuple[str, int]:
    """``"127.0.0.1:80"`` → ``("127.0.0.1", 80)``; ``"[::1]:80"`` → ``("::1", 80)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class ProxyStats:
    """Counters of one proxy since it started.

    Attributes:
        connections: accepted client connections.
        open: connections open now.
        failed_upstream: connections closed because the upstream could not be reached.
        bytes_upstream: bytes read from clients.
        bytes_downstream: bytes read from the upstream server.
    """

    connections: int = 0
    open: int = 0
    failed_upstream: int = 0
    bytes_upstream: int = 0
    bytes_downstream: int = 0


class _Side(asyncio.BufferedProtocol):
    """One socket of a connection: the client's, or ours to the upstream server.

    A buffered protocol reading into the proxy's one large buffer: on a fast stream that means a few big
    reads instead of many 256 KiB ones (asyncio's default), which is most of the proxy's cost when no toxic
    is on. One buffer serves every socket: the loop fills it and calls ``buffer_updated`` in one callback.
    """

    def __init__(self, link: _Link, reads: Stream) -> None:
        self.link = link
        self.reads = reads
        """The direction of the data this side reads."""
        self.transport: asyncio.Transport | None = None
        self.gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.link.proxy.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.link.pipes[self.reads].feed(self.link.proxy.read_buffer[:nbytes])

    def eof_received(self) -> bool:
        self.link.pipes[self.reads].feed_eof()
        return True  # keep the other direction open: a half-close is passed on, not turned into a close

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.link.side_lost(self, exc)

    def pause_writing(self) -> None:
        self.link.pipes[_other(self.reads)].set_blocked("write", True)

    def resume_writing(self) -> None:
        self.link.pipes[_other(self.reads)].set_blocked("write", False)

    def write(self, data: bytes | memoryview) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def buffered(self) -> bool:
        return self.transport is not None and self.transport.get_write_buffer_size() > 0

    def write_eof(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and self.transport.can_write_eof():
            self.transport.write_eof()


def _other(stream: Stream) -> Stream:
    return Stream.DOWNSTREAM if stream == Stream.UPSTREAM else Stream.UPSTREAM


class _Pipe:
    """One direction of one connection: source side → toxics → destination side."""

    def __init__(self, link: _Link, stream: Stream, source: _Side, dest: _Side) -> None:
        self.link, self.stream, self.source, self.dest = link, stream, source, dest
        self.queue: deque[Chunk | None] = deque()  # None: the end of the stream
        self.queued = 0
        self.writer: asyncio.Task[None] | None = None
        self.blocked: set[str] = set()
        self.done = False

    def feed(self, view: memoryview) -> None:
        """Pass on bytes just read into the proxy's read buffer (a view of it, valid until the next read)."""
        proxy = self.link.proxy
        proxy.count(self.stream, len(view))
        if not proxy.toxics_on(self.stream) and not self.queue and self.writer is None:
            # The fast path: no toxic, nothing queued before it. Written straight from the read buffer, no
            # copy when the socket takes it all; if the transport kept some, the buffer is now the transport's.
            self.dest.write(view)
            if self.dest.buffered():
                proxy.renew_read_buffer()
            return
        data = bytes(view)  # a copy: it waits in the queue while the read buffer is reused
        self.queue.append(Chunk(data, asyncio.get_running_loop().time()))
        self.queued += len(data)
        if self.queued > QUEUE_HIGH:
            self.set_blocked("queue", True)
        self._run()

    def feed_eof(self) -> None:
        self.queue.append(None)
        self._run()

    def set_blocked(self, why: str, blocked: bool) -> None:
        was = bool(self.blocked)
        if blocked:
            self.blocked.add(why)
        else:
            self.blocked.discard(why)
        transport = self.source.transport
        if transport is None or transport.is_closing() or was == bool(self.blocked):
            return
        if self.blocked:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _run(self) -> None:
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.queue:
                chunk = self.queue.popleft()
                if chunk is None:
                    await self._end()
                    return
                self.queued -= len(chunk.data)
                if self.queued < QUEUE_LOW:
                    self.set_blocked("queue", False)
                await self._through(self.link.proxy.toxics_on(self.stream), 0, chunk)
        finally:
            self.writer = None

    async def _through(self, toxics: list[Toxic], i: int, chunk: Chunk) -> None:
        if i == len(toxics):
            self.dest.write(chunk.data)
            return
        toxic = toxics[i]
        if toxic.removed.is_set() or not self.link.applies(toxic):
            await self._through(toxics, i + 1, chunk)
            return

        async def emit(piece: Chunk) -> None:
            await self._through(toxics, i + 1, piece)

        await toxic.pipe(chunk, emit, self.link)

    async def _end(self) -> None:
        for toxic in self.link.proxy.toxics_on(self.stream):
            if self.link.applies(toxic):
                await toxic.hold_eof()
        self.dest.write_eof()
        self.done = True
        self.link.pipe_done()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, Stream.UPSTREAM)
        self.server = _Side(self, Stream.DOWNSTREAM)
        self.pipes = {
            Stream.UPSTREAM: _Pipe(self, Stream.UPSTREAM, self.client, self.server),
            Stream.DOWNSTREAM: _Pipe(self, Stream.DOWNSTREAM, self.server, self.client),
        }
        self._applies: dict[str, bool] = {}
        self._state: dict[str, dict[str, float]] = {}
        self.closed = False

    async def connect_upstream(self) -> None:
        """Open the upstream connection; until it is open, the client is not read."""
        assert self.client.transport is not None
        self.client.transport.pause_reading()
        host, port = self.proxy.upstream
        try:
            await asyncio.get_running_loop().create_connection(lambda: self.server, host, port)
        except OSError:
            self.proxy.stats.failed_upstream += 1
            self.close(reset=False)
            return
        if self.closed:
            self.close(reset=False)
        elif not self.pipes[Stream.UPSTREAM].blocked:
            self.client.transport.resume_reading()

    def applies(self, toxic: Toxic) -> bool:
        """Whether ``toxic`` acts on this connection: drawn once per connection from its toxicity."""
        if toxic.name not in self._applies:
            self._applies[toxic.name] = toxic.toxicity >= 1.0 or self.proxy.rng.random() < toxic.toxicity
        return self._applies[toxic.name]

    def state(self, toxic: Toxic) -> dict[str, float]:
        return self._state.setdefault(toxic.name, {})

    def pipe_done(self) -> None:
        if all(p.done for p in self.pipes.values()):
            self.close(reset=False)

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if exc is not None:
            # Reset or broken: nothing more can be delivered to that side, so the connection is over.
            self.close(reset=False)
            return
        # A side that closed in order ends its direction; data already queued for the other side still drains.
        pipe = self.pipes[side.reads]
        if not pipe.done and (not pipe.queue or pipe.queue[-1] is not None):
            pipe.feed_eof()
        if self.client.gone and self.server.gone:
            self.close(reset=False)

    def close(self, *, reset: bool) -> None:
        """Close both sides; ``reset`` sends a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
        if not self.closed:
            self.closed = True
            self.proxy.forget(self)
        for pipe in self.pipes.values():
            if pipe.writer is not None and pipe.writer is not _current_task():
                pipe.writer.cancel()
        for side in (self.client, self.server):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class FaultProxy:
    """A TCP proxy from ``listen`` to ``upstream`` whose toxics can be added and removed while it runs.

    Args:
        listen: ``host:port`` to accept on (port 0: any free port; :attr:`address` says which).
        upstream: ``host:port`` to forward to.
        seed: seeds the toxicity draws and jitter, for reproducible runs.
    """

    def __init__(self, listen: str, upstream: str, *, seed: int | None = None) -> None:
        self.listen = split_host_port(listen)
        self.upstream = split_host_port(upstream)
        self.rng = random.Random(seed)
        self.stats = ProxyStats()
        self.read_buffer = memoryview(bytearray(READ_SIZE))
        self._toxics: dict[Stream, list[Toxic]] = {Stream.UPSTREAM: [], Stream.DOWNSTREAM: []}
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and start accepting.

        Raises:
            OSError: the listen address cannot be bound (in use, not local…).
        """
        host, port = self.listen
        self._server = await asyncio.get_running_loop().create_server(self._accept, host, port, reuse_address=True)

    @property
    def address(self) -> str:
        """The bound ``host:port``."""
        assert self._server is not None, "not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def _accept(self) -> _Side:
        link = _Link(self)
        self._links.add(link)
        self.stats.connections += 1
        self.stats.open = len(self._links)
        task = asyncio.get_running_loop().create_task(self._connect(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return link.client

    @staticmethod
    async def _connect(link: _Link) -> None:
        await asyncio.sleep(0)  # let the client side's connection_made run first
        await link.connect_upstream()

    def renew_read_buffer(self) -> None:
        """A fresh read buffer: a transport holds (or copied) the old one's bytes until it can send them."""
        self.read_buffer = memoryview(bytearray(READ_SIZE))

    def forget(self, link: _Link) -> None:
        self._links.discard(link)
        self.stats.open = len(self._links)

    def count(self, stream: Stream, n: int) -> None:
        if stream == Stream.UPSTREAM:
            self.stats.bytes_upstream += n
        else:
            self.stats.bytes_downstream += n

    # --- toxics ------------------------------------------------------------------------------------------

    def toxics_on(self, stream: Stream) -> list[Toxic]:
        """The toxics acting on ``stream`` now, in the order they were added (a copy)."""
        return list(self._toxics[stream])

    @property
    def toxics(self) -> list[Toxic]:
        return [*self._toxics[Stream.UPSTREAM], *self._toxics[Stream.DOWNSTREAM]]

    def add(self, toxic: Toxic) -> int:
        """Add ``toxic`` at the end of its stream's chain; it acts on open connections too.

        Returns:
            How many connections were open (and so affected at once).

        Raises:
            ValueError: a toxic with that name is already on this proxy.
        """
        if any(t.name == toxic.name for t in self.toxics):
            raise ValueError(f"a toxic named {toxic.name!r} is already on this proxy")
        self._toxics[toxic.stream].append(toxic)
        return len(self._links)

    def remove(self, name: str) -> Toxic | None:
        """Remove the toxic called ``name`` (``None`` if there is none); what it held goes on at once."""
        for chain in self._toxics.values():
            for toxic in chain:
                if toxic.name == name:
                    chain.remove(toxic)
                    toxic.removed.set()
                    return toxic
        return None

    async def stop(self) -> None:
        """Stop accepting and close every connection (a reset: nothing of the proxy outlives it)."""
        if self._server is not None:
            self._server.close()
        for toxic in self.toxics:
            self.remove(toxic.name)
        for link in list(self._links):
            link.close(reset=True)
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
