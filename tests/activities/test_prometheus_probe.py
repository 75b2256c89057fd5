"""The prometheus probe against a real Prometheus (Debian package ``prometheus``) scraping a test exporter.

The exporter is an HTTP server in this process whose gauges the tests set; Prometheus runs on loopback with
a temporary config and data directory, scraping it every 200ms. Without the binary these tests fail in CI
and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.probes import prometheus
from gameday.activities.probes.activities import check_hypothesis
from gameday.activities.probes.judge import Sample
from gameday.model.loader import parse_drill
from gameday.model.probe_prometheus import PrometheusProbe
from gameday.model.records import Phase, ProbeInput
from tests.conftest import require

QUEUE_DEPTH = "gameday_test_queue_depth"


class Exporter(ThreadingHTTPServer):
    """Serves ``/metrics`` with one gauge per queue; tests change ``depths`` while Prometheus scrapes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ExporterHandler)
        self.depths = {"orders": 42.0, "refunds": 7.0}


class _ExporterHandler(BaseHTTPRequestHandler):
    server: Exporter

    def do_GET(self) -> None:
        lines = [f"# TYPE {QUEUE_DEPTH} gauge"]
        lines += [f'{QUEUE_DEPTH}{{queue="{q}"}} {v}' for q, v in sorted(self.server.depths.items())]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    server = Exporter()
    threading.Thread(target=server.serve_forever, name="test-exporter", daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus_url(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on a free loopback port, scraping ``exporter`` every 200ms, ready to query."""
    binary = shutil.which("prometheus")
    require(binary, "the 'prometheus' binary (apt-get install prometheus)")
    assert binary is not None
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 200ms, evaluation_interval: 200ms}\n"
        "scrape_configs:\n"
        f"  - job_name: exporter\n    static_configs: [{{targets: ['127.0.0.1:{exporter.server_address[1]}']}}]\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_first_scrape(url, process, workdir / "prometheus.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _wait_for_first_scrape(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": QUEUE_DEPTH}, timeout=1)
            if answer.status_code == 200 and answer.json()["data"]["result"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"prometheus did not scrape the exporter within 30s: {log.read_text()[-2000:]}")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


def probe(url: str, **fields: object) -> PrometheusProbe:
    return PrometheusProbe.model_validate({"url": url, **fields})


async def test_a_value_within_bounds_passes(prometheus_url: str, client: httpx.AsyncClient) -> None:
    sample = await prometheus.take_sample(probe(prometheus_url, query=f"max({QUEUE_DEPTH})", max=100), client)

    assert sample == Sample(ok=True, latency=sample.latency)
    assert 0 < sample.latency < 2


async def test_every_series_is_checked_and_the_breaching_one_named(
    prometheus_url: str, client: httpx.AsyncClient
) -> None:
    sample = await prometheus.take_sample(probe(prometheus_url, query=QUEUE_DEPTH, max=10), client)

    assert not sample.ok
    assert sample.problem is not None
    assert f'{QUEUE_DEPTH}{{instance="127.0.0.1:' in sample.problem
    assert 'job="exporter", queue="orders"}: value 42 > max 10' in sample.problem
    assert "refunds" not in sample.problem


async def test_min_and_equals_bounds(prometheus_url: str, client: httpx.AsyncClient) -> None:
    total = f"scalar(sum({QUEUE_DEPTH}))"
    checks = [
        (probe(prometheus_url, query=total, equals=49), True, None),
        (probe(prometheus_url, query=total, equals=50, within=1), True, None),
        (probe(prometheus_url, query=total, equals=50), False, "scalar: value 49 is not 50"),
        (probe(prometheus_url, query=f"min({QUEUE_DEPTH})", min=10), False, "{}: value 7 < min 10"),
        (probe(prometheus_url, query='up{job="exporter"}', min=1, max=1), True, None),
    ]
    for spec, ok, problem in checks:
        sample = await prometheus.take_sample(spec, client)
        assert (sample.ok, sample.problem) == (ok, problem), spec.query


async def test_a_change_in_the_metric_is_seen_at_the_next_scrape(
    prometheus_url: str, exporter: Exporter, client: httpx.AsyncClient
) -> None:
    spec = probe(prometheus_url, query=f'{QUEUE_DEPTH}{{queue="refunds"}}', max=100)
    assert (await prometheus.take_sample(spec, client)).ok

    exporter.depths["refunds"] = 500.0
    try:
        deadline = time.monotonic() + 10
        while (sample := await prometheus.take_sample(spec, client)).ok:
            assert time.monotonic() < deadline, "the new value never reached the probe"
            await asyncio.sleep(0.1)
    finally:
        exporter.depths["refunds"] = 7.0

    assert sample.problem is not None and sample.problem.endswith("value 500 > max 100")


async def test_no_data_fails_the_sample(prometheus_url: str, client: httpx.AsyncClient) -> None:
    sample = await prometheus.take_sample(probe(prometheus_url, query="no_such_metric", max=1), client)

    assert not sample.ok
    assert sample.problem == "query returned no data: no_such_metric"


async def test_a_query_error_is_reported_in_prometheus_words(prometheus_url: str, client: httpx.AsyncClient) -> None:
    broken = await prometheus.take_sample(probe(prometheus_url, query="sum(", max=1), client)
    ranged = await prometheus.take_sample(probe(prometheus_url, query=f"{QUEUE_DEPTH}[1m]", max=1), client)

    assert broken.problem is not None and broken.problem.startswith("query failed (bad_data):")
    assert ranged.problem is not None and ranged.problem.startswith("the query returns a range vector")


async def test_an_unreachable_prometheus_is_a_failed_sample(client: httpx.AsyncClient) -> None:
    sample = await prometheus.take_sample(probe(f"http://127.0.0.1:{free_port()}", query="up", min=1), client)

    assert not sample.ok
    assert sample.problem == "connection refused"


def test_the_model_needs_one_consistent_bound() -> None:
    for fields, message in [
        ({}, "needs a bound"),
        ({"equals": 1, "max": 2}, "either 'equals' or 'min'/'max'"),
        ({"max": 1, "within": 0.5}, "'within' applies to 'equals' only"),
        ({"min": 2, "max": 1}, "no value can pass"),
        ({"max": 1, "tiemout": "1s"}, "Extra inputs are not permitted"),
    ]:
        with pytest.raises(ValidationError, match=message):
            PrometheusProbe.model_validate({"url": "http://127.0.0.1:9090", "query": "up", **fields})
    assert PrometheusProbe.model_validate({"url": "http://p:9090/prom/", "query": "up", "max": 1}).url == (
        "http://p:9090/prom"
    )


def test_nan_never_passes() -> None:
    spec = PrometheusProbe(url="http://p", query="up", max=1)

    assert spec.breach(float("nan")) == "value is NaN"
    assert spec.breach(0.5) is None


async def test_a_drill_file_prometheus_probe_runs_through_the_hypothesis_activity(prometheus_url: str) -> None:
    drill = parse_drill(
        f"""
name: prom
hypothesis:
  - name: queue shallow
    prometheus: {{url: "{prometheus_url}", query: "gameday_test_queue_depth", max: 1000}}
  - name: impossible
    prometheus: {{url: "{prometheus_url}", query: "gameday_test_queue_depth", max: -1}}
""",
        file="prom.yaml",
    )
    results = await ActivityEnvironment().run(
        check_hypothesis, ProbeInput(run_id="r", phase=Phase.PREFLIGHT, probes=drill.hypothesis)
    )
    assert [(r.probe, r.kind, r.ok) for r in results] == [
        ("queue shallow", "prometheus", True),
        ("impossible", "prometheus", False),
    ]
