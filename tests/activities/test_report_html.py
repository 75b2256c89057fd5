"""The HTML report: one self-contained page with the verdict, the tables and an SVG timeline chart.

The structure is read back with the stdlib HTML parser (what a browser's parser would see); then the page is
opened in a real headless Chromium (Debian's ``chromium``), screenshotted, and its pixels checked for the
verdict and the chart, with every request it makes on behalf of the page recorded in Chromium's net log.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from gameday.activities.traffic import TrafficRun
from gameday.model.records import (
    FaultRecord,
    FaultState,
    Phase,
    RunRecord,
    StepRecord,
    StepStatus,
    StopRequest,
    Verdict,
)
from gameday.model.traffic import Traffic
from gameday.report.chart import SERIES
from gameday.report.html import VERDICT_COLOURS, render_html
from gameday.report.run import render
from tests.activities.test_report import aborted_run, at
from tests.activities.test_store_traffic import make_traffic
from tests.activities.traffic.conftest import SERVER, Target
from tests.conftest import require

HOSTILE = '<script>alert("x")</script> & <img src=http://evil.invalid/x.png>'
UI_URL = "http://temporal-ui.test:8233/namespaces/default/workflows/checkout-db-outage-20240507"


def drill_with_traffic() -> RunRecord:
    """A stopped drill whose traffic (from +3 s of the run, 20 s, gap at traffic +8..10 s) saw two faults.

    The first fault, with a hostile label, is held from run +8 s to +15 s (traffic +5 to +12 s, the ``during``
    window of the test traffic); the second is never reverted. The stop reaches the drill at run +14.9 s.
    """
    record = aborted_run()
    hostile = record.faults[0].model_copy(update={"label": HOSTILE, "applied_at": at(8), "reverted_at": at(15)})
    stuck = record.faults[1].model_copy(update={"applied_at": at(9)})
    stop = StopRequest(reason="db team asked to stop <b>now</b>", by="bob", received_at=at(14.9))
    return record.model_copy(update={"traffic": make_traffic(), "faults": [hostile, stuck], "stop": stop})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "base", "col", "embed", "track"}


@dataclass
class Page(HTMLParser):
    """Every element of a page, in document order, with the text directly inside it."""

    elements: list[Element] = field(default_factory=list)
    open: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text += data

    def all(self, tag: str, css_class: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (css_class is None or e.attrs.get("class") == css_class)]

    def by_id(self, element_id: str) -> Element:
        [found] = [e for e in self.elements if e.attrs.get("id") == element_id]
        return found


def parse(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def points(path: Element) -> list[tuple[str, float, float]]:
    """The commands of an SVG path: (``M`` or ``L``, x, y)."""
    return [(c, float(x), float(y)) for c, x, y in re.findall(r"([ML])([-\d.]+),([-\d.]+)", path.attrs["d"])]


# --- structure --------------------------------------------------------------------------------------------------


def test_the_verdict_is_shown_first_in_its_colour_with_what_it_means() -> None:
    page = parse(render_html(drill_with_traffic()))

    verdict = page.by_id("verdict")
    assert verdict.text == "ABORTED"
    assert f"background:{VERDICT_COLOURS[Verdict.ABORTED]}" in verdict.attrs["style"]
    assert page.elements.index(verdict) < page.elements.index(page.by_id("chart"))
    assert "Stopped (by a person, a guardrail" in page.all("p", "meaning")[0].text


def test_the_chart_has_one_path_per_series_with_one_point_per_second_broken_at_the_gap() -> None:
    record = drill_with_traffic()
    assert record.traffic is not None
    page = parse(render_html(record))

    paths = page.all("path", "series")
    assert [p.attrs["data-series"] for p in paths] == [s.key for s in SERIES]
    throughput = points(paths[0])
    assert len(throughput) == len(record.traffic.timeline.second) == 18
    # Seconds 8 and 9 sent nothing: the line stops and starts again rather than bridging them.
    assert [c for c, _, _ in throughput].count("M") == 2
    error_rate = points(paths[1])
    zero = max(y for _, _, y in error_rate)
    under_fault = [x for _, x, y in error_rate if y < zero]
    assert len(under_fault) == 5  # traffic seconds 5, 6, 7, 10, 11: 3 of 10 failed


def test_each_fault_window_is_shaded_over_the_seconds_it_was_held_and_the_stop_is_marked() -> None:
    page = parse(render_html(drill_with_traffic()))
    [throughput, error_rate, _] = [points(p) for p in page.all("path", "series")]

    windows = page.all("rect", "fault-window")
    assert [w.attrs["data-fault"] for w in windows] == [HOSTILE, "db-link latency"]
    start, end = float(windows[0].attrs["x"]), float(windows[0].attrs["x"]) + float(windows[0].attrs["width"])
    zero = max(y for _, _, y in error_rate)
    failing = [x for _, x, y in error_rate if y < zero]
    assert start < min(failing) and max(failing) < end  # every failing second lies inside the shaded window
    never_reverted = windows[1]
    assert float(never_reverted.attrs["x"]) + float(never_reverted.attrs["width"]) == pytest.approx(
        max(float(line.attrs["x2"]) for line in page.all("line") if "x2" in line.attrs)
    )  # runs to the end of the axis
    [stop] = page.all("line", "stop-marker")
    # Received at traffic +11.9 s: between the middles of seconds 11 and 12.
    x = float(stop.attrs["x1"])
    assert throughput[-9][1] < x < throughput[-8][1]
    assert "stop by bob: db team asked to stop <b>now</b>" in [t.text for t in page.all("text")]


def test_every_user_string_is_escaped_so_nothing_becomes_markup() -> None:
    page_text = render_html(drill_with_traffic(), UI_URL)
    page = parse(page_text)

    assert page.all("script") == [] and page.all("img") == []
    assert "now" not in [b.text for b in page.all("b")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in page_text
    assert HOSTILE in [e.text for e in page.all("td")]  # read back exactly as written
    assert "db team asked to stop &lt;b&gt;now&lt;/b&gt;" in page_text


def test_the_page_loads_nothing_and_its_only_address_is_the_web_ui_link() -> None:
    page_text = render_html(drill_with_traffic().model_copy(update={"faults": []}), UI_URL)
    page = parse(page_text)

    for tag in ("script", "link", "img", "iframe", "object", "embed", "image", "use"):
        assert page.all(tag) == [], tag
    assert not any("src" in e.attrs for e in page.elements)
    assert re.findall(r"url\(([^)]*)\)", page_text) == ["#gap-hatch"]  # a pattern inside the page
    assert "@import" not in page_text
    addresses = re.findall(r"https?://[^\"'<\s]*", page_text)
    assert set(addresses) == {UI_URL}
    assert [a.attrs["href"] for a in page.all("a")] == [UI_URL]
    [csp] = [m for m in page.all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp.attrs["content"].startswith("default-src 'none'")


def test_the_tables_show_hypothesis_per_phase_phases_faults_traffic_windows_and_time_to_recovery() -> None:
    page = parse(render_html(drill_with_traffic()))

    assert [h.text for h in page.all("h3")] == ["Before the faults (preflight)", "Under fault (observe)"]
    cells = [e.text for e in page.all("td")]
    assert "1 min 00 s" in cells and "stopped by bob | guardrails quiet" in cells  # observe's duration, detail
    assert "14:00:08 (+8.0 s)" in cells and "14:00:15 (+15.0 s)" in cells and "7.0 s" in cells  # fault held
    assert "container = shop-db" in page_text_of(page)
    traffic = page.elements[page.elements.index(next(h for h in page.all("h2") if h.text == "Traffic windows")) :]
    windows = [
        e.text for e in traffic if e.tag == "td" and e.text in ("before", "during pause db", "rollback", "after")
    ]
    assert windows == ["before", "during pause db", "rollback", "after"]
    assert page.by_id("time-to-recovery") and "31.8 s" in [b.text for b in page.all("b")]
    assert "never" in [b.text for b in page.all("b")]  # time to safe: a fault was not reverted


def page_text_of(page: Page) -> str:
    return " ".join(e.text for e in page.elements)


def test_without_traffic_the_phases_are_drawn_as_a_bar_with_the_faults_and_the_stop() -> None:
    record = aborted_run()
    page = parse(render_html(record))

    assert page.all("path", "series") == []
    segments = page.all("rect", "phase-segment")
    assert [s.attrs["data-phase"] for s in segments] == ["preflight", "inject", "observe", "rollback", "verify"]
    assert len(page.all("rect", "fault-window")) == 2
    assert len(page.all("line", "stop-marker")) == 1
    assert "Traffic windows" not in page_text_of(page)


def test_a_run_still_in_progress_renders_with_what_was_recorded_so_far() -> None:
    record = RunRecord(
        run_id="r",
        drill_name="cache-loss",
        phase=Phase.OBSERVE,
        started_at=at(0),
        steps=[StepRecord(phase=Phase.OBSERVE, status=StepStatus.OK, started_at=at(0))],
        faults=[FaultRecord(index=0, label="flush", target="cache", kind="command", action="run")],
        traffic=make_traffic(until=11),
    )

    page = parse(render_html(record))

    assert page.by_id("verdict").text == "IN PROGRESS (observe)"
    assert page.all("rect", "fault-window") == []  # registered, never applied: nothing to shade
    assert "open" in [e.text for e in page.all("td")]
    assert render(record, "html") == render_html(record)


# --- the real traffic engine --------------------------------------------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[Target]:
    """The traffic tests' loopback server (``tests/activities/traffic/loopback_server.py``), in its own process."""
    process = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    yield Target(process, int(process.stdout.readline()))
    os.kill(process.pid, signal.SIGCONT)
    process.kill()
    process.wait(timeout=10)
    process.stdout.close()


@pytest.mark.integration
async def test_the_chart_of_real_traffic_shows_the_errors_inside_the_fault_window(loopback: Target) -> None:
    run = TrafficRun(Traffic.model_validate({"url": f"{loopback.url}/", "rate": "50/s"}), phase="before")
    sending = asyncio.create_task(run.run(until=datetime.now(UTC) + timedelta(seconds=4)))
    await asyncio.sleep(1.2)
    run.mark("during 503")
    await loopback.control("status/503")
    applied = datetime.now(UTC)
    await asyncio.sleep(1.4)
    await loopback.control("status/200")
    reverted = datetime.now(UTC)
    run.mark("after")
    traffic = await sending
    fault = FaultRecord(index=0, label="api 503", target="api", kind="http", action="status", state=FaultState.REVERTED)
    record = RunRecord(
        run_id="real-traffic",
        drill_name="api-503",
        verdict=Verdict.DEVIATED,
        started_at=traffic.started_at - timedelta(seconds=1),
        ended_at=datetime.now(UTC),
        faults=[fault.model_copy(update={"applied_at": applied, "reverted_at": reverted})],
        traffic=traffic,
    )

    page = parse(render_html(record))

    [throughput, error_rate, p95] = [points(p) for p in page.all("path", "series")]
    assert len(throughput) == len(traffic.timeline.second) >= 3
    zero = max(y for _, _, y in error_rate)
    failing = [x for _, x, y in error_rate if y < zero]
    assert failing, "the 503s show on the error-rate line"
    [window] = page.all("rect", "fault-window")
    start, end = float(window.attrs["x"]), float(window.attrs["x"]) + float(window.attrs["width"])
    second = throughput[1][1] - throughput[0][1]  # one second on the x axis
    # Seconds are drawn at their middle: a failing second overlaps the window by at least part of it.
    assert all(start - second / 2 < x < end + second / 2 for x in failing)
    assert p95 and [w.name for w in traffic.phases] == ["before", "during 503", "after"]


# --- in a real browser ---------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
WHITE = (255, 255, 255)


@dataclass
class Browser:
    """Debian's chromium, headless, every load through a proxy on a closed port (a fetch could only fail)."""

    binary: str
    workdir: Path
    runs: int = 0

    def screenshot(self, page: Path, *, netlog: Path | None = None, height: int = 2000) -> Path:
        self.runs += 1
        png = page.with_suffix(".png")
        args = [
            self.binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.workdir / f'profile-{self.runs}'}",
            f"--proxy-server=127.0.0.1:{closed_port()}",
            f"--screenshot={png}",
            f"--window-size=1280,{height}",
        ]
        if netlog is not None:
            args.append(f"--log-net-log={netlog}")
        done = subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
        return png


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    binary = shutil.which("chromium")
    require(binary, "Debian's chromium (apt-get install chromium)")
    assert binary is not None
    return Browser(binary, tmp_path)


def colour(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def pixels(png: Path) -> dict[tuple[int, int, int], int]:
    """How many pixels of each colour the screenshot has."""
    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return {rgb: count for count, rgb in colours}


def drawn_box(png: Path) -> tuple[int, int, int, int] | None:
    """The bounding box of everything that is not the white background."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    return ImageChops.difference(rgb, Image.new("RGB", rgb.size, WHITE)).getbbox()


def isolate(page: str, element_id: str, width: str) -> str:
    """A copy of ``page`` showing only the element ``element_id``, pinned to the top-left corner."""
    css = (
        f"<style>body *{{visibility:hidden}} #{element_id},#{element_id} *{{visibility:visible}}"
        f"#{element_id}{{position:fixed;left:0;top:0;margin:0;width:{width}}}</style></head>"
    )
    return page.replace("</head>", css, 1)


@pytest.mark.integration
def test_chromium_shows_the_verdict_and_the_chart(browser: Browser, tmp_path: Path) -> None:
    page = render_html(drill_with_traffic(), UI_URL)
    report = tmp_path / "report.html"
    report.write_text(page)

    png = browser.screenshot(report)

    print(f"\nscreenshot of the HTML report: {png}")
    assert png.stat().st_size > 50_000
    seen = pixels(png)
    assert len(seen) > 200  # text, tables, shading: not a blank or an error page
    assert seen.get(colour(VERDICT_COLOURS[Verdict.ABORTED]), 0) > 2000  # the badge
    for series in SERIES:
        assert seen.get(colour(series.colour), 0) > 100, series.key
    # Only the chart, then only the verdict: each draws in its own corner of an otherwise blank page.
    for element_id, width, at_least, at_most in (
        ("chart", "1200px", (1000, 500), (1280, 900)),
        ("verdict", "auto", (100, 25), (400, 80)),
    ):
        isolated = tmp_path / f"{element_id}-only.html"
        isolated.write_text(isolate(page, element_id, width))
        box = drawn_box(browser.screenshot(isolated))
        assert box is not None, element_id
        left, top, right, bottom = box
        assert left < 40 and top < 40, (element_id, box)
        assert at_least[0] <= right - left <= at_most[0] and at_least[1] <= bottom - top <= at_most[1], box
    verdict = pixels(tmp_path / "verdict-only.png")
    assert max(verdict, key=lambda rgb: verdict[rgb] if rgb != WHITE else 0) == colour(VERDICT_COLOURS[Verdict.ABORTED])


def page_requests(netlog: Path) -> list[str]:
    """URLs Chromium requested on behalf of a page opened from a file (not its own background requests)."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("network_isolation_key", "").startswith("file://")
    ]


@pytest.mark.integration
def test_chromium_requests_nothing_for_the_report(browser: Browser, tmp_path: Path) -> None:
    page = render_html(drill_with_traffic(), UI_URL)
    report = tmp_path / "report.html"
    report.write_text(page)

    browser.screenshot(report, netlog=tmp_path / "report.netlog.json")

    assert page_requests(tmp_path / "report.netlog.json") == []
    # The net log does catch a page's request: the same page with an image from the network and no CSP.
    fetching = tmp_path / "fetching.html"
    image = '<img src="http://report-test.invalid/pixel.png">'
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', page)
    assert csp is not None
    fetching.write_text(page.replace(csp.group(0), "").replace("<main>", "<main>" + image))
    browser.screenshot(fetching, netlog=tmp_path / "fetching.netlog.json")
    assert page_requests(tmp_path / "fetching.netlog.json") == ["http://report-test.invalid/pixel.png"]
    # With the report's CSP, even markup that slipped into the page could not fetch anything.
    blocked = tmp_path / "blocked.html"
    blocked.write_text(page.replace("<main>", "<main>" + image))
    browser.screenshot(blocked, netlog=tmp_path / "blocked.netlog.json")
    assert page_requests(tmp_path / "blocked.netlog.json") == []
