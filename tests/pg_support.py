"""A real PostgreSQL server for tests, from Debian's ``postgresql`` package: initdb into a temporary directory,
started with ``pg_ctl`` on a free loopback port, password authentication, one fresh database per test.

PostgreSQL refuses to run as root: when the tests run as root the server runs as the ``postgres`` user the
Debian package creates (through ``runuser``). Stopping and starting it again keeps its data, which is how the
outage tests take the database away under a running store.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import require

SUPERUSER = "gameday"


def find_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, on 127.0.0.1.

    Attributes:
        bin_dir: where ``initdb`` and ``pg_ctl`` are.
        data_dir: the cluster (owned by the user running the server).
        port: the TCP port, kept across restarts so URLs stay valid.
        password: the superuser's password: random, and what the tests check never leaks into an error.
    """

    bin_dir: Path
    data_dir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    run_as: str | None = None

    @classmethod
    def create(cls) -> PostgresServer:
        bin_dir = find_bin_dir()
        require(bin_dir, "PostgreSQL (Debian package 'postgresql': initdb, pg_ctl)")
        assert bin_dir is not None
        run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                require(False, "a 'postgres' user to run PostgreSQL as (tests run as root)")
            run_as = "postgres"
        # mkdtemp, not pytest's tmp_path: pytest's base directory is private to root and the server runs as postgres.
        root = Path(tempfile.mkdtemp(prefix="gameday-pg-"))
        server = cls(bin_dir=bin_dir, data_dir=root / "data", run_as=run_as)
        pwfile = root / "pwfile"
        pwfile.write_text(server.password + "\n")
        if run_as is not None:
            shutil.chown(root, user=run_as)
            shutil.chown(pwfile, user=run_as)
        server._run(
            "initdb",
            "-D", str(server.data_dir),
            "-U", SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        )  # fmt: skip
        pwfile.unlink()
        server.start()
        return server

    @property
    def root(self) -> Path:
        return self.data_dir.parent

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL with the password in it, as a user would configure ``GAMEDAY_DATABASE_URL``."""
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start (or start again) on the same port; returns once it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.root / "log"),
                  "-o", options)  # fmt: skip

    def stop(self) -> None:
        """Stop at once: open connections are cut, as in a real outage (``-m fast`` rolls back, never waits)."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir))

    def running(self) -> bool:
        status = subprocess.run(
            self._command("pg_ctl", "status", "-D", str(self.data_dir)), capture_output=True, check=False
        )
        return status.returncode == 0

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg  # a gameday dependency; imported here so a broken install fails these tests only

        name = f"gameday_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name made here: no injection
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir))
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        log = self.root / "log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={self.password} dbname={database}"

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(self._command(tool, *args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {args[0]} failed ({done.returncode}): {done.stderr}\n{self.log_tail()}")
