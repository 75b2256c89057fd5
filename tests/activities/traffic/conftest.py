"""The real target the traffic tests measure: ``loopback_server.py`` in its own process (see its docstring)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVER = Path(__file__).with_name("loopback_server.py")


@dataclass
class Target:
    """The running loopback server: its URL, and the levers a test pulls on it."""

    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def control(self, path: str) -> None:
        """Change what ``/`` answers, e.g. ``delay/100`` or ``status/503``."""
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/control/{path}")
            response.raise_for_status()

    async def stall(self, seconds: float) -> None:
        """Freeze the server process for ``seconds``: requests queue in the kernel, as in a real stall."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture
def target() -> Iterator[Target]:
    """A fresh loopback server per test, so one test's mode or stall never leaks into another."""
    process = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield Target(process, port)
    os.kill(process.pid, signal.SIGCONT)  # never leave a stopped process behind
    process.kill()
    process.wait(timeout=10)
    process.stdout.close()


@pytest.fixture
def closed_port() -> int:
    """A TCP port nobody listens on: connecting is refused."""
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
    return port
