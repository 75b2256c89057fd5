"""Every drill of ``examples/`` that loads today, run against the real demo system to the verdict its file states.

Real parts: the demo system (shop API and inventory, ``gameday.demo``) started here on its documented ports
(127.0.0.1:8000 and 8001, pidfiles in ``/tmp/gameday-demo``: the examples name them as a user writes them, as the
README's tour does; the lock of :func:`tests.harness.demo_ports` keeps the tour and this module apart), a Temporal
dev server and a worker. Each example states its expected verdict in a ``# expect: VERDICT`` line.

Every file of ``examples/`` is listed here: :data:`RUNNABLE` (run by this module), :data:`PENDING` (written in the
syntax of issue 15 §3, waiting for a feature not merged yet: named), or :data:`OTHER` (documentation and the
Prometheus/Alertmanager files, checked with the real ``promtool`` and ``amtool``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.demo.system import SERVE_API_PORT, SERVE_DIR, SERVE_INVENTORY_PORT, DemoSystem, get_json
from gameday.model.errors import DrillFileError
from gameday.model.loader import load_drill_file
from gameday.model.records import DrillInput, FaultState, Phase, Verdict
from gameday.report.expect import expect_lines
from gameday.report.junit import drill_cases
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.conftest import require
from tests.harness import demo_ports, finish, running_worker, wait_until

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "examples"

RUNNABLE = ("dependency-outage-cache.yaml", "latency-percentiles.yaml", "orders-no-data-loss.yaml")
"""Examples that load on main today: each is run to the verdict of its ``# expect:`` line."""

PENDING = {
    "circuit-breaker.yaml": ("watch", "sequence"),
    "degradation-levels.yaml": ("watch", "sequence"),
    "detect-within-30s.yaml": ("watch", "detect"),
    "silent-failure.yaml": ("watch", "detect"),
    "alert-dependency-down.yaml": ("alerts",),
}
"""Examples waiting for features of issue 15 built elsewhere: the keys they need that main does not know yet
(``observe.watch`` with ``record``, ``expect.sequence``/``detect``/``alerts``/``data_loss``, traffic ``{{id}}`` with
``read_back``). Once those land, move each to :data:`RUNNABLE`."""

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
    assert any(expected_verdict(name) is Verdict.DEVIATED for name in PENDING), "one example written to fail"


@pytest.mark.parametrize("name", sorted(PENDING))
def test_a_pending_example_is_refused_today_only_for_the_keys_it_waits_for(name: str) -> None:
    # Valid YAML with the expect line; the only problems main's loader finds are the keys of the features it needs.
    assert isinstance(yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")), dict)
    expected_verdict(name)
    try:
        load_drill_file(EXAMPLES / name)
    except DrillFileError as err:
        unknown = {m.group(1) for p in err.problems if (m := re.search(r"unknown key '(\w+)'", p.message))}
        others = [str(p) for p in err.problems if "unknown key" not in p.message]
        assert others == [] and unknown <= set(PENDING[name]), f"{name}: {err}"


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


@pytest.mark.parametrize("name", RUNNABLE)
async def test_an_example_runs_against_the_demo_to_its_expected_verdict(
    name: str, demo: DemoSystem, client: Client, tmp_path: Path
) -> None:
    drill = load_drill_file(EXAMPLES / name)
    expected = expected_verdict(name)
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

    assert record.verdict is expected, f"{name}: {record.verdict}: {record.summary}"
    assert [f.state for f in record.faults] == [FaultState.REVERTED] * len(drill.faults)
    lines = expect_lines(record)
    assert lines, "every example states what it expects under the fault"
    if expected is Verdict.RESILIENT:
        assert [line for line in lines if not line.held] == []
        assert [case for case in drill_cases(record) if case.outcome == "failed"] == []
    if name == "orders-no-data-loss.yaml":  # its recovery is checkout served (from the cache too): the breaker
        wait_until(lambda: get_json(f"{demo.api_url}/health")[1]["level"] == "optimal", what="the breaker closed")
    assert get_json(f"{demo.api_url}/health")[1]["level"] == "optimal"  # the demo is whole again for the next
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
