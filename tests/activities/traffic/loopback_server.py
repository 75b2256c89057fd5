"""A loopback HTTP/1.1 server with controllable latency and failure, run as its own process.

Its own process so that a test can freeze it with SIGSTOP (a real stall: the kernel still queues the
requests) and so that its work does not share the event loop it is measured from. It prints its port on
the first line of stdout. Paths:

- ``/ok`` — 200 ``ok``
- ``/delay/<ms>`` — 200 after ``<ms>`` milliseconds
- ``/status/<code>`` — that status
- ``/ghost/<anything>`` — 200, whatever was asked (a service that acknowledges everything)
- ``/copies/<n>/<anything>`` — 200 ``{"copies": n}`` (a lookup that answers 200 with how many it holds)
- ``/hang`` — never answers
- ``/close`` — closes the connection without answering
- ``/`` — answers as the last ``/control/...`` request said: ``/control/delay/<ms>``, ``/control/status/<code>``
  (both start at 0 ms and 200)

Usage: ``python loopback_server.py`` (stdlib only; keep-alive; no pipelining: clients here do not pipeline).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

SPIN = 0.0015
REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Unavailable"}


@dataclass
class Mode:
    """What ``/`` answers; changed by ``/control/...`` requests."""

    delay: float = 0.0
    status: int = 200


async def pause(seconds: float) -> None:
    """Sleep ``seconds`` precisely: asyncio's timers wake up to 1ms late (epoll rounds up to the millisecond), so
    the last 1.5ms are spent yielding to other connections instead. The delay injected is then the delay asked."""
    deadline = time.monotonic() + seconds
    if seconds > SPIN:
        await asyncio.sleep(seconds - SPIN)
    # A deliberate yield-spin: an Event set by a timer would wake as late as the timer.
    while time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0)


def response(status: int, body: bytes = b"ok") -> bytes:
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def answer(path: str, mode: Mode) -> bytes | None:
    """The bytes to send for ``path``; ``None`` closes the connection without an answer."""
    match path.strip("/").split("/"):
        case ["ok"]:
            return response(200)
        case ["delay", ms]:
            await pause(int(ms) / 1000)
            return response(200)
        case ["status", code]:
            return response(int(code))
        case ["ghost", _]:
            return response(200)
        case ["copies", n, _]:
            return response(200, b'{"copies": %d}' % int(n))
        case ["hang"]:
            await asyncio.Event().wait()
            return None
        case ["close"]:
            return None
        case ["control", "delay", ms]:
            mode.delay = int(ms) / 1000
            return response(200)
        case ["control", "status", code]:
            mode.status = int(code)
            return response(200)
        case [""]:
            if mode.delay:
                await pause(mode.delay)
            return response(mode.status)
        case _:
            return response(404)


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: Mode) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0
            )
            if length:
                await reader.readexactly(length)
            data = await answer(path, mode)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client went away (it timed out, or the test ended)
    finally:
        writer.close()


async def main() -> None:
    mode = Mode()
    server = await asyncio.start_server(
        lambda r, w: serve_connection(r, w, mode), "127.0.0.1", 0, backlog=4096, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
