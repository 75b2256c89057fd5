"""Every drill of ``examples/``, run against the real demo system to the verdict its file states (issue 15 §4).

Real parts: the demo system (shop API and inventory, ``gameday.demo``) started here on its documented ports
(127.0.0.1:8000 and 8001, pidfiles in ``/tmp/gameday-demo``: the examples name them as a user writes them, as the
README's tour does; the lock of :func:`tests.harness.demo_ports` keeps the tour and this module apart), a Temporal
dev server and a worker. Each example states its expected verdict in a ``# expect: VERDICT`` line. For the alert
example, Prometheus and Alertmanager (Debian packages) run from ``examples/alerts/``'s own config and rule files,
Alertmanager on its documented 127.0.0.1:9093 (under the same lock), Prometheus scraping the demo's ``/metrics``.

Every file of ``examples/`` is listed here: :data:`RUNNABLE` (run by this module), :data:`PENDING` (written ahead
of a feature not merged yet: named), or :data:`OTHER` (documentation and the Prometheus/Alertmanager files, checked
with the real ``promtool`` and ``amtool``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.demo.system import SERVE_API_PORT, SERVE_DIR, SERVE_INVENTORY_PORT, DemoSystem, get_json
from gameday.model.loader import load_drill_file
from gameday.model.records import DrillInput, FaultState, Phase, RunRecord, Verdict
from gameday.report.expect import expect_lines
from gameday.report.junit import drill_cases
from gameday.report.run import render_json, render_markdown
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.alerting import Alerting, configured_alerting
from tests.conftest import require
from tests.harness import demo_ports, finish, running_worker, wait_until

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "examples"

RUNNABLE = (
    "dependency-outage-cache.yaml",
    "latency-percentiles.yaml",
    "circuit-breaker.yaml",
    "degradation-levels.yaml",
    "detect-within-30s.yaml",
    "silent-failure.yaml",
    "orders-no-data-loss.yaml",
    "alert-dependency-down.yaml",
)
"""Every example, each run to the verdict of its ``# expect:`` line."""

PENDING: dict[str, tuple[str, ...]] = {}
"""Examples written ahead of a feature main does not have yet, with the drill-file keys they wait for: none today,
every example of issue 15 runs. One waiting for a feature goes here (and in examples/README.md) until it lands."""

ALERTING = "alert-dependency-down.yaml"
"""The example reading its alerts from the Alertmanager of ``examples/alerts/`` on 127.0.0.1:9093."""
ALERTMANAGER_PORT = 9093
"""The port ``examples/alerts/prometheus.yml`` alerts to and the alert example reads from."""

OTHER = (
    "README.md",
    "alerts/shop-rules.yml",
    "alerts/shop-rules.test.yml",
    "alerts/prometheus.yml",
    "alerts/alertmanager.yml",
)
"""Documentation and the alerting files (checked below with promtool and amtool)."""

EXPECT_LINE = re.compile(r"^# expect: ([A-Z_]+)$", re.MULTILINE)


def expected_verdict(name: str) -> Verdict:
    found = EXPECT_LINE.findall((EXAMPLES / name).read_text(encoding="utf-8"))
    assert len(found) == 1, f"{name}: one '# expect: VERDICT' line, found {found}"
    return Verdict(found[0])


def test_every_file_of_examples_is_listed_runnable_pending_or_other() -> None:
    files = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.is_file()}
    listed = [*RUNNABLE, *PENDING, *OTHER]
    assert len(listed) == len(set(listed)), "a file listed twice"
    assert files == set(listed), f"not listed: {sorted(files - set(listed))}; gone: {sorted(set(listed) - files)}"
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in [*RUNNABLE, *PENDING]:
        expected_verdict(name)
        assert f"`{name}`" in readme, f"examples/README.md does not list {name}"
    assert PENDING == {}, "every example of issue 15 runs"
    assert any(expected_verdict(name) is Verdict.DEVIATED for name in RUNNABLE), "one example written to fail"
    for name in RUNNABLE:
        load_drill_file(EXAMPLES / name)  # in the syntax main takes, issue 15's forms included


def test_the_alerting_rules_and_configs_are_valid_and_the_rules_fire_on_the_demo_metrics() -> None:
    for tool in ("promtool", "amtool"):
        require(shutil.which(tool), f"{tool} (Debian prometheus, prometheus-alertmanager)")
    alerts = EXAMPLES / "alerts"
    for argv in (
        ["promtool", "check", "rules", "shop-rules.yml"],
        ["promtool", "check", "config", "prometheus.yml"],
        ["promtool", "test", "rules", "shop-rules.test.yml"],  # the rules fire (and resolve) on given series
        ["amtool", "check-config", "alertmanager.yml"],
    ):
        done = subprocess.run(argv, cwd=alerts, capture_output=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout.decode()}{done.stderr.decode()}"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoSystem]:
    """The demo on its documented ports, as ``gameday dev --demo`` serves it (refused if something holds them)."""
    system = DemoSystem(SERVE_DIR, api_port=SERVE_API_PORT, inventory_port=SERVE_INVENTORY_PORT)
    with demo_ports(), system:
        yield system


@pytest.fixture(scope="module")
def shop_alerting(demo: DemoSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """Prometheus and Alertmanager from ``examples/alerts/`` as its comments run them (Alertmanager on 9093, held
    under the demo's port lock with the demo), Prometheus scraping the demo's ``/metrics``."""
    alerts = EXAMPLES / "alerts"
    with configured_alerting(
        tmp_path_factory.mktemp("alerting"),
        alerts / "prometheus.yml",
        alerts / "alertmanager.yml",
        am_port=ALERTMANAGER_PORT,
        targets=1,
    ) as running:
        yield running


async def run_example(name: str, client: Client, tmp_path: Path) -> tuple[RunRecord, RunRecord]:
    """Run ``name`` against the demo; its record as the workflow returned it and as the store kept it."""
    drill = load_drill_file(EXAMPLES / name)
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    run_id = f"example-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, store) as queue:
        handle = await client.start_workflow(
            DrillWorkflow.run,
            DrillInput(run_id=run_id, drill=drill, source=str(EXAMPLES / name), started_by="pytest"),
            id=run_id,
            task_queue=queue,
        )
        record = await finish(handle, f"example_{name.removesuffix('.yaml').replace('-', '_')}", within=90)
    stored = store.get(run_id)
    assert stored is not None
    return record, stored


def check_common(name: str, record: RunRecord, demo: DemoSystem) -> None:
    """The verdict of the ``# expect:`` line, every fault reverted, one report line per expectation, demo whole."""
    expected = expected_verdict(name)
    assert record.verdict is expected, f"{name}: {record.verdict}: {record.summary}"
    assert [f.state for f in record.faults] == [FaultState.REVERTED] * len(record.faults) and record.faults
    lines = expect_lines(record)
    assert lines, "every example states what it expects under the fault"
    if expected is Verdict.RESILIENT:
        assert [line for line in lines if not line.held] == []
        assert [case for case in drill_cases(record) if case.outcome == "failed"] == []
    if name == "orders-no-data-loss.yaml":  # its recovery is checkout served (from the cache too): the breaker
        wait_until(lambda: get_json(f"{demo.api_url}/health")[1]["level"] == "optimal", what="the breaker closed")
    assert get_json(f"{demo.api_url}/health")[1]["level"] == "optimal"  # the demo is whole again for the next


def watched_values(report: dict[str, object], probe: str) -> object:
    watch = report["watch"]
    assert isinstance(watch, list)
    [found] = [w for w in watch if w["name"] == probe]
    return found["values"]


@pytest.mark.parametrize("name", [name for name in RUNNABLE if name != ALERTING])
async def test_an_example_runs_against_the_demo_to_its_expected_verdict(
    name: str, demo: DemoSystem, client: Client, tmp_path: Path
) -> None:
    record, stored = await run_example(name, client, tmp_path)
    check_common(name, record, demo)
    lines = expect_lines(record)
    report = json.loads(render_json(stored))  # `gameday report RUN_ID --format json`: the names a script reads
    if name == "dependency-outage-cache.yaml":
        # Under the fault checkout answered from its cache, every sample of the probe that says so.
        [cached] = [p for p in record.probes if p.phase is Phase.OBSERVE and p.probe == "from the cache"]
        assert cached.ok and cached.samples >= 3
    if name == "orders-no-data-loss.yaml":
        # Writes were acknowledged during the stall and every one read back, once; the demo finds no unwritten id.
        loss = record.data_loss
        assert loss is not None and loss.acknowledged > 0 and loss.ghost_id is None
        assert (loss.checked, loss.lost, loss.duplicated) == (loss.acknowledged, 0, 0)
    if name == "latency-percentiles.yaml":
        assert [line.name for line in lines] == ["availability", "latency p50", "latency p95", "latency p99"]
        traffic = record.traffic
        assert traffic is not None
        [during] = [w for w in traffic.phases if w.name.startswith("during")]
        assert during.latency is not None and during.latency.p50 >= 0.08  # the injected 100 ms ± 20 ms is there
    if name == "circuit-breaker.yaml":
        [sequence] = [e for e in record.expectations if e.name == "sequence"]
        assert sequence.held is True and sequence.actual.startswith("CLOSED → OPEN → HALF_OPEN"), sequence
        values = watched_values(report, "breaker")
        assert isinstance(values, list) and values[0] == "CLOSED" and values[-1] == "CLOSED" and "OPEN" in values
    if name == "degradation-levels.yaml":
        [sequence] = [e for e in record.expectations if e.name == "sequence"]
        assert sequence.held is True, sequence
        assert watched_values(report, "level") == ["optimal", "degraded", "optimal"]  # never `unavailable`
    if name == "detect-within-30s.yaml":
        assert report["time_to_detect"] is not None and 0 <= report["time_to_detect"] < 30
        [detect] = [e for e in record.expectations if e.name == "detect"]
        assert detect.held is True and detect.actual.startswith("detected after"), detect
    if name == "silent-failure.yaml":
        assert "silent failure" in record.summary, record.summary
        assert report["time_to_detect"] is None and report["verdict"] == "DEVIATED"
        [detect] = [e for e in record.expectations if e.name == "detect"]
        assert detect.held is False and detect.actual.startswith("undetected"), detect
    if name == "orders-no-data-loss.yaml":
        loss = report["data_loss"]
        assert isinstance(loss, dict)
        assert loss["acknowledged"] > 0 and loss["lost"] == 0 and loss["duplicated"] == 0, loss
        assert loss["checked"] == loss["acknowledged"]  # every acknowledged order read back, none sampled away


async def test_the_alert_example_fires_and_resolves_its_alerts_in_a_real_prometheus_and_alertmanager(
    demo: DemoSystem, shop_alerting: Alerting, client: Client, tmp_path: Path
) -> None:
    assert shop_alerting.alertmanager == f"http://127.0.0.1:{ALERTMANAGER_PORT}"  # the URL the example names
    record, stored = await run_example(ALERTING, client, tmp_path)
    check_common(ALERTING, record, demo)

    [line] = [e for e in record.expectations if e.name == "alerts"]
    assert line.held is True, line
    assert line.expected.startswith("CheckoutDependencyDown, CheckoutBreakerOpen fire within 1m")
    for alert in ("CheckoutDependencyDown", "CheckoutBreakerOpen"):
        assert f"{alert} fired after" in line.actual, line.actual
    seen = {a.name: a for a in record.alerts}
    assert seen["CheckoutDependencyDown"].resolved_at is not None and seen["CheckoutBreakerOpen"].resolved_at
    markdown = render_markdown(stored)  # expected vs actual, as the report shows them
    assert "## Alerts" in markdown and line.expected in markdown
