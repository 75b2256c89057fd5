"""Real parts for CLI tests: the session dev server, a ``gameday worker`` process on a fresh task queue, SQLite.

The CLI runs in-process through typer's ``CliRunner`` (which calls ``asyncio.run``), so tests using it are plain
sync functions; the worker is a real subprocess so that it shares nothing with the command under test but Temporal
and the results database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import RunRecord
from tests.conftest import installed_binary
from tests.harness import wait_until

UI_URL = "http://temporal-ui.test:8233"


@dataclass
class Gameday:
    """The ``gameday`` command pointed at one Temporal server, task queue and results database.

    Attributes:
        env: the ``GAMEDAY_*`` environment every invocation gets.
        workdir: a directory of its own for drill files and the files their faults touch.
        store: the results database the worker records into, read directly to wait for a run's record.
    """

    env: dict[str, str]
    workdir: Path
    store: Store

    def __call__(self, *args: str, **env: str) -> Result:
        """Invoke ``gameday ARGS`` in-process; ``env`` overrides single variables for this call."""
        return CliRunner().invoke(app, list(args), env={**self.env, **env})

    def drill(self, text: str) -> Path:
        """Write a drill file and return its path."""
        path = self.workdir / f"drill-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(text)
        return path

    def recorded(self, run_id: str, timeout: float = 30.0) -> RunRecord:
        """The run's final record, once the worker has written it (a stop returns before the record is final)."""

        def final() -> bool:
            record = self.store.get(run_id)
            return record is not None and record.verdict is not None

        wait_until(final, what=f"the final record of {run_id}", timeout=timeout)
        record = self.store.get(run_id)
        assert record is not None
        return record


@pytest.fixture(scope="session")
def temporal_address(dev_env: WorkflowEnvironment) -> str:
    return dev_env.client.service_client.config.target_host


@pytest.fixture(scope="module")
def gameday(temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gameday]:
    """A running ``gameday worker`` on a fresh task queue, and the CLI configured to use it."""
    workdir = tmp_path_factory.mktemp("gameday-cli")
    database_url = f"sqlite:///{workdir / 'results.db'}"
    env = {
        "GAMEDAY_TEMPORAL_ADDRESS": temporal_address,
        "GAMEDAY_NAMESPACE": "default",
        "GAMEDAY_TASK_QUEUE": f"test-cli-{uuid.uuid4()}",
        "GAMEDAY_DATA_DIR": str(workdir / "data"),
        "GAMEDAY_DATABASE_URL": database_url,
        "GAMEDAY_UI_URL": UI_URL,
        "COLUMNS": "200",
    }
    log = workdir / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [installed_binary("gameday"), "worker"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        def polling() -> bool:
            assert worker.poll() is None, f"gameday worker exited at start:\n{log.read_text()}"
            return "worker polling task queue" in log.read_text()

        wait_until(polling, what="gameday worker to poll its task queue", timeout=30)
        yield Gameday(env=env, workdir=workdir, store=Store(database_url))
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
            raise AssertionError(f"gameday worker ignored SIGTERM:\n{log.read_text()}") from None
    assert code == 0, f"gameday worker exited with {code}:\n{log.read_text()}"
