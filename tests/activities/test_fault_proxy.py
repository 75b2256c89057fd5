"""The proxy itself, with no toxic: every byte arrives, in order, under back-pressure; half-closes pass through;
stopping it closes its connections; a dead upstream closes the client's connection."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gameday.activities.proxy import FaultProxy

pytestmark = pytest.mark.integration

PATTERN = os.urandom(1 << 20)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """``<n>\\n`` → n bytes of PATTERN (repeated), then the server half-closes; or echo after ``echo\\n``."""
    line = (await reader.readline()).strip()
    if line == b"echo":
        while data := await reader.read(65536):
            writer.write(data)
        writer.write(b"<eof seen>")
    else:
        left = int(line)
        while left:
            part = PATTERN[: min(left, len(PATTERN))]
            writer.write(part)
            await writer.drain()
            left -= len(part)
    await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    fault_proxy = FaultProxy("127.0.0.1:0", f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    await fault_proxy.start()
    yield fault_proxy
    await fault_proxy.stop()
    server.close()
    await server.wait_closed()


def port_of(proxy: FaultProxy) -> int:
    return int(proxy.address.rsplit(":", 1)[1])


async def test_every_byte_arrives_in_order_even_when_the_reader_is_slow(proxy: FaultProxy) -> None:
    size = 24 * (1 << 20) + 12345
    expected = hashlib.sha256()
    left = size
    while left:
        part = PATTERN[: min(left, len(PATTERN))]
        expected.update(part)
        left -= len(part)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
    writer.write(f"{size}\n".encode())
    got, received, reads = hashlib.sha256(), 0, 0
    while chunk := await reader.read(1 << 16):
        got.update(chunk)
        received += len(chunk)
        reads += 1
        if reads < 40:
            await asyncio.sleep(0.005)  # a slow start fills the proxy's write buffers: back-pressure
    writer.close()

    assert received == size
    assert got.hexdigest() == expected.hexdigest()


async def test_a_half_close_passes_through_and_the_answer_still_comes_back(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
    writer.write(b"echo\nhello")
    await writer.drain()
    writer.write_eof()

    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()

    assert answer == b"hello<eof seen>"


async def test_stopping_the_proxy_closes_its_connections_and_its_port(proxy: FaultProxy) -> None:
    port = port_of(proxy)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"echo\n")
    await writer.drain()

    await proxy.stop()

    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_an_unreachable_upstream_closes_the_client_connection_and_is_counted() -> None:
    with_nothing = FaultProxy("127.0.0.1:0", "127.0.0.1:1")  # port 1: nothing listens there
    await with_nothing.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(with_nothing))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert with_nothing.stats.failed_upstream == 1
    finally:
        await with_nothing.stop()
