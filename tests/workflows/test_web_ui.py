"""The dev server's Web UI serves a drill the way a person should read it: its HTTP API returns the workflow
with gameday's search attributes and summary, and its event history names each step."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from activities.store import Store
from cli import launch
from tests.harness import running_worker
from worker.client import connect
from worker.config import GamedayConfig
from worker.devserver import DevServer, free_port
from workflows.loader import parse_drill

pytestmark = pytest.mark.integration


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.loads(response.read())
    assert isinstance(payload, dict)
    return payload


async def test_the_web_ui_api_shows_the_drill_with_its_search_attributes_summary_and_named_steps(
    tmp_path: Path,
) -> None:
    server = DevServer(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=free_port()).start()
    try:
        config = GamedayConfig(temporal_address=server.address, environment="staging", task_queue="ui-test")
        client = await connect(config, wait_ready=30)
        marker = tmp_path / "marker"
        drill = parse_drill(
            f"""
name: ui-drill
team: payments
description: A drill the Web UI should explain.
targets:
  sh: {{command: {{}}}}
faults:
  - {{name: flag on, target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: 200ms}}
""",
            file="ui.yaml",
        )
        async with running_worker(client, Store(f"sqlite:///{tmp_path / 'r.db'}")) as queue:
            handle = await launch.start(
                client, config.with_overrides(task_queue=queue), drill, source="ui.yaml", run_id=None
            )
            await handle.result()
        base = f"{server.ui_url}/api/v1/namespaces/default/workflows/{handle.id}"
        described = json.dumps(_get(base))
        history = json.dumps(_get(f"{base}/history?maximumPageSize=200"))
    finally:
        server.stop()

    # Values, summaries and details are payloads (base64 JSON) in the API: decode what the UI would show.
    decoded = _decoded(described + history)
    for name, value in (("DrillName", "ui-drill"), ("DrillTeam", "payments"), ("DrillEnvironment", "staging")):
        assert f'"{name}"' in described and f'"{value}"' in decoded, name
    assert '"DrillVerdict"' in described and '"RESILIENT"' in decoded
    assert "drill ui-drill (payments)" in decoded
    for step in ("inject: flag on", "rollback: revert flag on", "record: RESILIENT"):
        assert step in decoded, step


def _decoded(text: str) -> str:
    import base64
    import re

    return text + " ".join(
        base64.b64decode(m).decode(errors="replace") for m in re.findall(r'"data": "([A-Za-z0-9+/=]{4,})"', text)
    )
