"""The dev server's Web UI serves a drill the way a person should read it: its HTTP API returns the workflow
with gameday's search attributes and summary, its event history names each step, and the workflow page itself
renders in a real headless Chromium (Debian's ``chromium``), screenshotted as a test artifact."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from gameday.activities.store import Store
from gameday.cli import launch
from gameday.config.app import GamedayConfig
from gameday.model.loader import parse_drill
from gameday.worker.client import connect
from gameday.worker.devserver import DevServer, free_port
from tests.activities.test_report_html import CHROMIUM_FLAGS, closed_port, pixels
from tests.conftest import require
from tests.harness import running_worker

pytestmark = pytest.mark.integration

SUMMARY = "drill ui-drill (payments)"


@dataclass(frozen=True)
class FinishedDrill:
    """A drill run to its verdict on a dev server that is still up, with its Web UI."""

    server: DevServer
    run_id: str
    workdir: Path

    @property
    def api_url(self) -> str:
        return f"{self.server.ui_url}/api/v1/namespaces/default/workflows/{self.run_id}"

    @property
    def page_url(self) -> str:
        return f"{self.server.ui_url}/namespaces/default/workflows/{self.run_id}"


@pytest_asyncio.fixture(scope="module")
async def finished_drill(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FinishedDrill]:
    """One dev server and one finished drill for the module: the API test and the browser test read the same."""
    workdir = tmp_path_factory.mktemp("web-ui")
    server = DevServer(db_file=workdir / "temporal.db", port=free_port(), ui_port=free_port()).start()
    try:
        config = GamedayConfig(temporal_address=server.address, environment="staging", task_queue="ui-test")
        client = await connect(config, wait_ready=30)
        marker = workdir / "marker"
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
        async with running_worker(client, Store(f"sqlite:///{workdir / 'r.db'}")) as queue:
            handle = await launch.start(
                client, config.with_overrides(task_queue=queue), drill, source="ui.yaml", run_id=None
            )
            await handle.result()
        yield FinishedDrill(server, handle.id, workdir)
    finally:
        server.stop()


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.loads(response.read())
    assert isinstance(payload, dict)
    return payload


def test_the_web_ui_api_shows_the_drill_with_its_search_attributes_summary_and_named_steps(
    finished_drill: FinishedDrill,
) -> None:
    described = json.dumps(_get(finished_drill.api_url))
    history = json.dumps(_get(f"{finished_drill.api_url}/history?maximumPageSize=200"))

    # Values, summaries and details are payloads (base64 JSON) in the API: decode what the UI would show.
    decoded = _decoded(described + history)
    for name, value in (("DrillName", "ui-drill"), ("DrillTeam", "payments"), ("DrillEnvironment", "staging")):
        assert f'"{name}"' in described and f'"{value}"' in decoded, name
    assert '"DrillVerdict"' in described and '"RESILIENT"' in decoded
    assert SUMMARY in decoded
    for step in ("inject: flag on", "rollback: revert flag on", "record: RESILIENT"):
        assert step in decoded, step


def _decoded(text: str) -> str:
    return text + " ".join(
        base64.b64decode(m).decode(errors="replace") for m in re.findall(r'"data": "([A-Za-z0-9+/=]{4,})"', text)
    )


def _chromium(url: str, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Headless Debian chromium on ``url``, a fresh profile each run.

    The proxy on a closed port is the report tests' guard: Chromium never proxies loopback, so the UI on
    127.0.0.1 loads while anything the page asks of the outside world fails. The virtual time budget lets the
    single-page app fetch the workflow from its API and render before the capture, without a fixed sleep.
    """
    binary = shutil.which("chromium")
    require(binary, "Debian's chromium (apt-get install chromium)")
    assert binary is not None
    args = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--proxy-server=127.0.0.1:{closed_port()}",
        "--window-size=1280,1000",
        "--virtual-time-budget=8000",
        *mode,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_chromium_renders_the_workflow_page_of_the_finished_drill(finished_drill: FinishedDrill) -> None:
    png = finished_drill.workdir / "web-ui-workflow.png"

    shot = _chromium(finished_drill.page_url, finished_drill.workdir / "profile-shot", f"--screenshot={png}")
    dom = _chromium(finished_drill.page_url, finished_drill.workdir / "profile-dom", "--dump-dom")

    rendered = png.with_suffix(".html")
    rendered.write_text(dom.stdout)
    print(f"\nscreenshot of the Web UI's workflow page: {png} (rendered DOM: {rendered})")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    assert png.stat().st_size > 20_000
    seen = pixels(png)
    assert len(seen) > 100  # text, badges, icons: not a blank page or a bare error
    assert max(seen.values()) < 0.95 * sum(seen.values())  # no single colour fills the page
    # The page after its scripts ran: the UI fetched this run through its API and drew its timeline, whose bars
    # carry the activity summaries (the static summary lives under another tab, checked through the API above).
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert finished_drill.run_id in dom.stdout
    for step in ("inject: flag on", "rollback: revert flag on", "record: RESILIENT"):
        assert step in dom.stdout, step
