"""``gameday console`` (issue 18) in Debian's headless Chromium, driven by Playwright (``/usr/bin/chromium``, no
browser download), against the module's dev server and real ``gameday worker``: the pages render, Stop stops a real
drill (the SIGSTOPped process runs again), Approve continues a gated drill, a read-only console refuses actions,
and no request of the browser leaves loopback (its net log)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from gameday.model.records import FaultState, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import command_drill
from tests.cli.test_freeze import marker_drill, pause_drill, start, state_of, unique
from tests.conftest import installed_binary
from tests.harness import sleeping_process, wait_until

pytestmark = pytest.mark.integration

USERS = "alice:alice-secret,bob:bob-secret"
ALICE = ("alice", "alice-secret")
"""Basic-auth credentials of a user of :data:`USERS`."""
STOP_RED = (0xCF, 0x22, 0x2E)
"""``button.danger`` in console/static/console.css."""


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-component-update",
    "--disable-sync",
    # Chromium's own form-filling asks a Google server about each form it sees: not the console's request.
    "--disable-features=AutofillServerCommunication",
]


@dataclass
class Served:
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def serve(gameday: Gameday) -> Iterator[object]:
    """Start ``gameday console`` processes with extra environment; each is ended after the module."""
    procs: list[subprocess.Popen[bytes]] = []

    def start_console(**env: str) -> Served:
        port = free_port()
        log = gameday.workdir / f"console-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [installed_binary("gameday"), "console", "--port", str(port)],
                env={**os.environ, **gameday.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/static/console.css", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, what="the console to answer", timeout=30)
        return Served(url, log)

    yield start_console
    for proc in procs:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def acting(serve) -> Served:  # type: ignore[no-untyped-def]
    served: Served = serve(GAMEDAY_CONSOLE_USERS=USERS, GAMEDAY_CONSOLE_ACTIONS="all")
    return served


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    with sleeping_process(tmp_path) as sleeping:
        yield sleeping


def holding_drill(gameday: Gameday, name: str) -> tuple[str, Path]:
    """A command drill observing for 30 s, started and holding its fault: ``(run_id, marker)``."""
    marker = gameday.workdir / unique(name)
    run_id = start(gameday, command_drill(unique(name), marker, probe="true", observe="30s"))
    wait_until(marker.exists, what="the drill's fault", timeout=60)
    return run_id, marker


def _pages_requests(netlog: Path, origin: str) -> list[str]:
    """Every URL that a page of ``origin`` (the console) made Chromium request, from its net log: the requests
    whose initiator or network isolation key is that origin, iframes and subresources included.

    Chromium's own background requests (component updates, account checks) are not the console's: their initiator
    is "not an origin" and their key is not the console's; the proxy on a closed port keeps them from leaving.
    """
    text = netlog.read_text().rstrip()
    if not text.endswith("}"):  # a log cut at exit lacks its closing brackets
        text = text.rstrip(",") + "]}"
    log = json.loads(text)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] != start_job or "url" not in params:
            continue
        if params.get("initiator") == origin or origin in str(params.get("network_isolation_key", "")):
            urls.append(params["url"])
    return urls


def test_in_chromium_pages_render_stop_stops_a_real_drill_and_approve_continues_a_gated_one(
    gameday: Gameday, acting: Served, sleeper: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium (apt-get install chromium)"
    proc, pidfile = sleeper
    team = unique("console")
    paused = start(gameday, pause_drill(unique("console-pause"), team, pidfile))
    wait_until(lambda: state_of(proc.pid) == "T", what="the sleeping process to be paused", timeout=60)
    marker = gameday.workdir / unique("console-gate")
    gated = unique("console-gate")
    gate_file = gameday.drill(
        command_drill(unique("console-gated"), marker, probe="true", observe="200ms") + "approval: {timeout: 5m}\n"
    )
    assert gameday("run", str(gate_file), "--id", gated).exit_code == 0
    netlog = tmp_path / "netlog.json"

    with sync_playwright() as pw:
        # Everything not loopback goes to a proxy on a closed port: it could only fail (loopback bypasses proxies).
        args = [*CHROMIUM_ARGS, f"--proxy-server=127.0.0.1:{free_port()}", f"--log-net-log={netlog}"]
        browser = pw.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{acting.url}/")
        assert page.url.endswith("/login")  # nothing without signing in
        page.fill("#user", "alice")
        page.fill("#password", "alice-secret")
        page.click("#sign-in")

        # Now: the paused drill with its phase and its fault in place.
        page.wait_for_selector(f'tr.run[data-run="{paused}"]')
        row = page.locator(f'tr.run[data-run="{paused}"]')
        wait_until(lambda: "inject" in row.inner_text() or "observe" in row.inner_text(), what="the phase", timeout=30)
        assert "proc" in row.inner_text()
        page.screenshot(path=str(tmp_path / "now.png"), full_page=True)
        with Image.open(tmp_path / "now.png") as shot:
            colours = {rgb: n for n, rgb in shot.convert("RGB").getcolors(maxcolors=1 << 24) or []}
        assert colours.get(STOP_RED, 0) > 300  # the red Stop, Stop all and Freeze buttons are drawn
        assert len(colours) > 50  # text and table, not a blank or an error page

        # Stop asks a reason, then stops: the process runs again.
        row.locator("button.stop").click()
        page.fill("#reason", "checkout is paging")
        page.click("#confirm-stop")
        assert "stop sent to" in page.inner_text("#flash")
        wait_until(lambda: state_of(proc.pid) != "T", what="the process to run again", timeout=30)
        record = gameday.recorded(paused)
        assert record.verdict == Verdict.ABORTED
        assert record.stop is not None and record.stop.by == "alice via console"
        assert record.stop.reason == "checkout is paging"
        assert [f.state for f in record.faults] == [FaultState.REVERTED]

        # Approvals: the gated drill waits; Approve lets it inject and finish.
        def at_gate() -> bool:
            page.goto(f"{acting.url}/approvals")
            return page.locator(f'tr.waiting[data-run="{gated}"]').count() == 1

        wait_until(at_gate, what="the gated drill on the Approvals page", timeout=60)
        page.locator(f'tr.waiting[data-run="{gated}"] button.approve').click()
        assert f"approved {gated}" in page.inner_text("#flash")
        assert gameday.recorded(gated, timeout=60).verdict == Verdict.RESILIENT

        # Runs: both runs, each with its report inline and a trend; the stop says who.
        page.goto(f"{acting.url}/runs?team={team}")
        assert paused in page.inner_text("#runs")
        page.goto(f"{acting.url}/runs/{paused}")
        assert "stopped by alice via console: checkout is paging" in page.inner_text("#stopped-by")
        assert page.locator("svg.trend circle.run").count() >= 1
        report = page.frame_locator("iframe.report")
        assert "ABORTED" in report.locator("body").inner_text()
        page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
        page.goto(f"{acting.url}/schedules")
        assert "Schedules" in page.inner_text("h1")
        browser.close()

    assert requested and all(urlsplit(u).hostname == "127.0.0.1" for u in requested), requested
    from_pages = _pages_requests(netlog, acting.url)
    assert len(from_pages) > 10, from_pages  # the log saw the pages' requests: it proves something
    assert [u for u in from_pages if urlsplit(u).hostname != "127.0.0.1"] == []
    assert "alice via console from 127.0.0.1: stop" in acting.log.read_text()


def test_a_read_only_console_refuses_every_action(gameday: Gameday, serve) -> None:  # type: ignore[no-untyped-def]
    read_only: Served = serve(GAMEDAY_CONSOLE_USERS=USERS)  # no GAMEDAY_CONSOLE_ACTIONS
    run_id, marker = holding_drill(gameday, "console-ro")
    try:
        with httpx.Client(base_url=read_only.url, timeout=10) as http:
            assert http.get("/").status_code == 401  # nothing without signing in
            page = http.get("/", auth=ALICE)
            assert page.status_code == 200 and "Stop all" not in page.text
            for path in (f"/runs/{run_id}/stop", "/stop-all", "/freeze", f"/runs/{run_id}/approve", "/unfreeze"):
                refused = http.post(path, data={"reason": "should not"}, auth=ALICE)
                assert refused.status_code == 403, (path, refused.text)
            wrong = http.post(f"/runs/{run_id}/stop", data={"reason": "x"}, auth=("alice", "guess"))
            assert wrong.status_code == 401
        assert marker.exists()  # the drill went on: nothing was sent
    finally:
        assert gameday("stop", run_id, "--reason", "test over", "--wait").exit_code == 0
    assert not marker.exists()


def test_an_action_from_another_site_s_page_or_for_a_run_that_is_not_running_sends_nothing(
    gameday: Gameday, acting: Served
) -> None:
    run_id, marker = holding_drill(gameday, "console-origin")
    try:
        with httpx.Client(base_url=acting.url, timeout=10) as http:
            # Basic-auth credentials a browser would send along with another site's form: refused.
            forged = http.post(
                f"/runs/{run_id}/stop", data={"reason": "x"}, auth=ALICE, headers={"Origin": "http://evil.test"}
            )
            assert forged.status_code == 403
            gone = http.post("/runs/no-such-run/stop", data={"reason": "x"}, auth=ALICE)
            assert gone.status_code == 303 and "not%20running" in gone.headers["location"]
            # The bearer token acts as its user, when one is configured (here: none, so it is refused).
            assert http.get("/", headers={"Authorization": "Bearer nothing"}).status_code == 401
        assert marker.exists()
    finally:
        assert gameday("stop", run_id, "--reason", "test over", "--wait").exit_code == 0


def test_the_freeze_lever_stops_its_team_s_drills_and_schedules_pause_and_resume_by_name(
    gameday: Gameday, acting: Served
) -> None:
    team = unique("console-freeze")
    marker = gameday.workdir / unique("console-freeze")
    run_id = start(gameday, marker_drill(unique("console-freeze"), team, marker))
    wait_until(marker.exists, what="the drill's fault", timeout=60)
    with httpx.Client(base_url=acting.url, timeout=30, auth=ALICE) as http:
        frozen = http.post("/freeze", data={"reason": "INC-7", "team": team})
        assert frozen.status_code == 303, frozen.text
        try:
            record = gameday.recorded(run_id)
            assert not marker.exists()
            assert record.stop is not None and record.stop.by == "freeze" and record.stop.reason == "frozen: INC-7"
            now = http.get("/").text
            assert f"FROZEN: team {team} frozen by alice via console" in now, now
        finally:
            assert http.post("/unfreeze", data={"team": team}).status_code == 303
        wait_until(lambda: "FROZEN" not in http.get("/").text, what="the freeze lifted", timeout=30)

        sid = unique("console-sched")
        drill = gameday.drill(marker_drill(unique("console-sched"), team, marker, "200ms"))
        added = gameday("schedule", "add", str(drill), "--id", sid, "--cron", "0 3 1 1 *", "--blackout", "2028-01-01")
        assert added.exit_code == 0, added.output
        try:
            wait_until(lambda: sid in http.get("/schedules").text, what="the schedule listed", timeout=30)
            row = http.get("/schedules").text.split(f"/schedules/{sid}/", 1)[0].rsplit("<tr", 1)[1].split("</tr>", 1)[0]
            assert '<span class="blackout">2028-01-01 03:00</span>' in row, row
            assert http.post(f"/schedules/{sid}/pause").status_code == 303
            assert "paused by alice via console" in http.get("/schedules").text
            assert http.post(f"/schedules/{sid}/resume").status_code == 303
            assert "paused by" not in http.get("/schedules").text.split(sid, 1)[1].split("</tr>", 1)[0]
        finally:
            gameday("schedule", "delete", sid)


def test_reject_ends_a_gated_drill_with_nothing_injected_and_stop_all_stops_what_runs(
    gameday: Gameday, acting: Served
) -> None:
    gate_marker = gameday.workdir / unique("console-reject")
    gated = unique("console-reject")
    gate_file = gameday.drill(
        command_drill(unique("console-rejected"), gate_marker, probe="true", observe="200ms")
        + "approval: {timeout: 5m}\n"
    )
    assert gameday("run", str(gate_file), "--id", gated).exit_code == 0
    with httpx.Client(base_url=acting.url, timeout=30, auth=ALICE) as http:
        wait_until(lambda: f'data-run="{gated}"' in http.get("/approvals").text, what="the gate", timeout=60)
        assert http.post(f"/runs/{gated}/reject", data={"reason": "not during the sale"}).status_code == 303
        record = gameday.recorded(gated)
        assert record.verdict == Verdict.ABORTED and not gate_marker.exists()
        assert record.stop is not None and record.stop.by == "alice via console"
        assert record.stop.reason == "rejected by alice: not during the sale"
        assert all(f.state != FaultState.REVERTED for f in record.faults)  # nothing was ever applied

        marker = gameday.workdir / unique("console-all")
        run_id = start(gameday, marker_drill(unique("console-all"), unique("team"), marker))
        wait_until(marker.exists, what="the drill's fault", timeout=60)
        wait_until(lambda: f'data-run="{run_id}"' in http.get("/").text, what="the drill listed", timeout=30)
        assert http.post("/stop-all", data={"reason": "everyone out"}).status_code == 303
        stopped = gameday.recorded(run_id)
        assert stopped.stop is not None and stopped.stop.by == "alice via console" and not marker.exists()
