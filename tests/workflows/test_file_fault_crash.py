"""A file fault survives its worker: SIGKILLed between apply and revert, the next worker restores the file exactly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.model.records import FaultState, Phase, Verdict
from tests.harness import WorkerProcesses, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration

CONTENT = b"feature_flags:\n  checkout: on\n" * 40


@pytest.mark.parametrize("action", ["remove", "corrupt", "fill"])
async def test_worker_killed_between_apply_and_revert_the_next_worker_restores_the_file(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    data_dir = tmp_path / "gameday-data"
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(data_dir))  # the workers' data dir: where the copy lives
    srv = tmp_path / "srv"
    srv.mkdir()
    target, original = srv / "flags.yaml", tmp_path / "original.yaml"
    target.write_bytes(CONTENT)
    original.write_bytes(CONTENT)
    os.chmod(target, 0o600)
    mtime = target.stat().st_mtime_ns
    params = {"remove": "", "corrupt": ", offset: 3, bytes: 100", "fill": ", size: 2m"}[action]
    drill = f"""
name: file-crash-{action}
targets:
  flags: {{file: {{path: "{target}"}}}}
hypothesis:
  - name: flags file intact
    command: {{run: "cmp -s {target} {original}", timeout: 5s}}
    mode: edge
faults:
  - {{target: flags, action: {action}{params}}}
observe: {{duration: 4s, interval: 250ms}}
recovery: {{within: 20s, interval: 100ms}}
"""
    workers = WorkerProcesses.on_new_queue(client, "file-crash", tmp_path)
    queue = workers.queue
    first = workers.start()
    try:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.OBSERVE)
        workers.kill(first)
        assert not target.exists() or target.read_bytes() != CONTENT, "the fault is in place once its worker is dead"
        assert list(data_dir.rglob("content")), "the copy is in gameday's data dir, not beside the file"
        assert sorted(p.name for p in srv.iterdir()) == ([] if action == "remove" else ["flags.yaml"])

        workers.start()
        record = await handle.result()
    finally:
        workers.stop_all()

    assert record.verdict == Verdict.RESILIENT, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    assert target.read_bytes() == CONTENT
    assert (target.stat().st_mode & 0o777, target.stat().st_mtime_ns) == (0o600, mtime)
    assert sorted(p.name for p in srv.iterdir()) == ["flags.yaml"]
    await wait_until_async(lambda: not list(data_dir.rglob("content")), what="the copy to be dropped", within=1)
