"""``gameday dev`` never orphans its Temporal server, and a port already taken is named with what holds it.

Real processes: ``gameday dev`` as a subprocess, SIGKILLed; the Temporal dev server it started; a socket held by
this test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.worker.devserver import DevServer, DevServerError, free_port, port_holder, port_open
from tests.conftest import installed_binary
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    """No such process any more (a zombie nobody reaped yet counts as gone: it holds no port)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def dev_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "GAMEDAY_TASK_QUEUE": f"test-dev-{uuid.uuid4()}",
    }


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_sigkill_of_gameday_dev_takes_its_temporal_server_down_and_frees_the_port(
    tmp_path: Path, dev_env: dict[str, str]
) -> None:
    port, ui_port = free_port(), free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [installed_binary("gameday"), "dev", "--port", str(port), "--ui-port", str(ui_port)],
            env=dev_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server_pid = None
    try:

        def serving() -> bool:
            assert dev.poll() is None, f"gameday dev exited:\n{log.read_text()}"
            return "Ctrl-C stops everything" in log.read_text() and port_open(port)

        wait_until(serving, what="gameday dev to serve Temporal", timeout=90)
        holder = port_holder(port)
        assert holder is not None and holder.is_temporal_server, holder
        server_pid = holder.pid
        assert server_pid != dev.pid

        dev.send_signal(signal.SIGKILL)  # no Ctrl-C, no clean-up code in gameday: only the kernel knows
        dev.wait(timeout=10)

        wait_until(lambda: gone(server_pid), what="the orphaned Temporal server to end", timeout=30)
        wait_until(lambda: not port_open(port), what=f"port {port} to be free again", timeout=30)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait(timeout=10)
        if server_pid is not None and not gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # the regression this test catches: never leave it behind


def test_a_port_held_by_a_temporal_server_is_named_and_gameday_worker_suggested(
    tmp_path: Path, dev_env: dict[str, str]
) -> None:
    server = DevServer(db_file=tmp_path / "other.db", port=free_port(), ui_port=free_port()).start()
    try:
        assert server.process is not None
        done = subprocess.run(
            [installed_binary("gameday"), "dev", "--port", str(server.port), "--ui-port", str(free_port())],
            env=dev_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.stop()

    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert f"port {server.port} (Temporal frontend) is in use by pid {server.process.pid} (" in said
    assert "temporal server start-dev" in said
    assert "use it with `gameday worker`" in said and f"GAMEDAY_TEMPORAL_ADDRESS=127.0.0.1:{server.port}" in said
    assert "Traceback" not in done.stderr


def test_a_port_held_by_another_program_is_named_with_its_pid_and_command(tmp_path: Path, held_port: int) -> None:
    with pytest.raises(DevServerError) as refused:
        DevServer(db_file=tmp_path / "t.db", port=free_port(), ui_port=held_port).start()

    said = str(refused.value)
    assert said.startswith(f"port {held_port} (Web UI) is in use by pid {os.getpid()} (")
    assert "gameday worker" not in said and "choose another port" in said
