"""Real parts for the fault activity tests: child processes, a loopback HTTP server, an activity environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from gameday.model.drill import Fault, Target
from gameday.model.records import FaultInput, FaultRecord

FaultInputFactory = Callable[..., FaultInput]
Eventually = Callable[[Callable[[], bool], str], Awaitable[None]]


async def _eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def eventually() -> Eventually:
    """Wait until a condition holds (polling), failing the test after a few seconds."""
    return _eventually


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


@pytest.fixture
def fault_input() -> FaultInputFactory:
    """Build the activity argument for one fault on one target, with an optional record of what apply changed."""

    def build(target: Target, fault: Fault, changed: dict[str, str] | None = None) -> FaultInput:
        record = FaultRecord(
            index=0,
            label=fault.label,
            target=fault.target,
            kind=target.kind.value,
            action=fault.action_name,
            changed=changed or {},
        )
        return FaultInput(
            run_id="test-run", index=0, target_name=fault.target, target=target, fault=fault, record=record
        )

    return build


@dataclass
class Sleeper:
    """A ``sleep 300`` child process and a pidfile naming it."""

    proc: subprocess.Popen[bytes]
    pidfile: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def state(self) -> str | None:
        return Processes.state(self.pid)


class Processes:
    """The test's real processes: start ``sleep 300`` children, read states, and stop them all at teardown."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._sleepers: list[Sleeper] = []
        self._strays: set[int] = set()

    def start_sleeper(self) -> Sleeper:
        proc = subprocess.Popen(["sleep", "300"])
        pidfile = self._workdir / f"sleeper-{proc.pid}.pid"
        pidfile.write_text(f"{proc.pid}\n")
        sleeper = Sleeper(proc, pidfile)
        self._sleepers.append(sleeper)
        return sleeper

    @staticmethod
    def state(pid: int) -> str | None:
        """Field 3 of /proc/<pid>/stat (``T`` stopped, ``S``/``R`` running, ``Z`` zombie), ``None`` if gone."""
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return None
        return text[text.rindex(")") + 2 :].split()[0]

    def adopt(self, pid: int) -> None:
        """Stop ``pid`` at teardown too (a process a command under test started)."""
        self._strays.add(pid)

    def stop_all(self) -> None:
        for sleeper in self._sleepers:
            # Also whatever the pidfile names now: the process a `restart` started.
            text = sleeper.pidfile.read_text().strip() if sleeper.pidfile.exists() else ""
            if text.isdigit():
                self._strays.add(int(text))
            self._strays.add(sleeper.pid)
        for pid in self._strays:
            _stop_if_our_sleep(pid)
        for sleeper in self._sleepers:
            sleeper.proc.kill()
            sleeper.proc.wait()


def _stop_if_our_sleep(pid: int) -> None:
    # Only ever our `sleep 300` (or the shell about to become it): a recycled pid may belong to anything.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return
    if cmdline == b"sleep\x00300\x00" or cmdline.startswith((b"sh\x00", b"/bin/sh\x00")):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def sleeper(processes: Processes) -> Sleeper:
    """A ``sleep 300`` child with a pidfile; continued and killed at teardown."""
    return processes.start_sleeper()


@dataclass
class Call:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class Recorder:
    """A loopback HTTP server's address and the calls it received; ``/status/<code>`` answers that code."""

    base_url: str
    calls: list[Call] = field(default_factory=list)


@pytest.fixture(scope="session")
def _http_server() -> Iterator[tuple[ThreadingHTTPServer, list[Call]]]:
    calls: list[Call] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            calls.append(
                Call(
                    self.command,
                    self.path,
                    json.loads(raw) if raw else None,
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
            status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
            body = json.dumps({"path": self.path}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_server(_http_server: tuple[ThreadingHTTPServer, list[Call]]) -> Recorder:
    """The session's loopback server, with an empty list of calls for this test."""
    server, calls = _http_server
    calls.clear()
    host, port = server.server_address[:2]
    return Recorder(base_url=f"http://{host!s}:{port}", calls=calls)
