"""Real parts for the ``host`` fault tests: a PostgreSQL with few connection slots, and the loads' processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.pg_support import PostgresServer

MAX_CONNECTIONS = 20
PROBE_USER = "probe"
"""A role that logs in from 127.0.0.1 without a password (``trust``): what a drill's probe connects as."""


@contextmanager
def small_postgres(max_connections: int = MAX_CONNECTIONS) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of its own started with ``max_connections`` (3 of them reserved for superusers), and a
    role :data:`PROBE_USER` that needs no password from 127.0.0.1."""
    server = PostgresServer.create()
    try:
        with open(server.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\nmax_connections = {max_connections}\n")
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(f"host all {PROBE_USER} 127.0.0.1/32 trust\n" + hba.read_text())  # a probe needs no secret
        server.stop()
        server.start()
        import psycopg

        with psycopg.connect(server._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE ROLE {PROBE_USER} LOGIN")
        yield server
    finally:
        server.destroy()


def connect_error(server: PostgresServer) -> str | None:
    """Open (and close) one client connection as the superuser: ``None`` if accepted, else the server's refusal."""
    import psycopg

    try:
        with psycopg.connect(server._dsn("postgres"), connect_timeout=5):
            return None
    except psycopg.OperationalError as err:
        return str(err)


def group_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used, from ``/proc/<pid>/stat`` (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def schedstat_seconds(pids: list[int]) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of the processes, from ``/proc/<pid>/schedstat``."""
    ran = waited = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                fields = f.read().split()
        except OSError:
            continue
        ran += int(fields[0]) / 1e9
        waited += int(fields[1]) / 1e9
    return ran, waited


def kill_own_loads() -> None:
    """SIGKILL the process group of every load this process started and left running (a failed test's)."""
    import signal

    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read()
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == os.getpid() and b"gameday-host-load:" in args:
            with suppress(ProcessLookupError):
                os.killpg(int(entry), signal.SIGKILL)
