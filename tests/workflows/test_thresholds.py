"""Thresholds written bare (``99%``, ``800ms``) or as comparisons (``">= 99%"``, ``"< 800ms"``): accepted everywhere
a threshold is written, judged as written (a strict ``<`` misses on equality), refused with the way to write it
when the comparison points the wrong way; and traffic guardrails held for their ``for``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gameday.activities.probes.guardrails import GuardrailWatch
from gameday.activities.probes.judge import Sample, judge
from gameday.activities.traffic.guards import TrafficGuards
from gameday.cli.main import app
from gameday.model.drill import Drill, Guardrail, Probe
from gameday.model.records import Phase
from gameday.model.traffic import Expect, Latency, SecondStats, WindowStats


def _window(ok: int, failed: int, p95: float = 0.1) -> WindowStats:
    latency = Latency(p50=p95, p90=p95, p95=p95, p99=p95, max=p95)
    return WindowStats(name="during", start=0, sent=ok + failed, ok=ok, status_5xx=failed, latency=latency)


@pytest.mark.parametrize(
    ("written", "p95", "missed"),
    [
        ("800ms", 0.8, False),
        ('"<= 800ms"', 0.8, False),
        ('"< 800ms"', 0.8, True),
        ('"< 800ms"', 0.799, False),
        ('"<800ms"', 0.9, True),
    ],
)
def test_a_latency_expectation_is_judged_as_written(written: str, p95: float, missed: bool) -> None:
    expect = Expect.model_validate({"latency_p95": written.strip('"')})

    assert bool(expect.misses(_window(100, 0, p95=p95))) is missed


def test_an_availability_floor_is_judged_as_written_and_its_miss_reads_as_the_figures() -> None:
    at_least, above = (
        Expect.model_validate({"availability": ">= 99%"}),
        Expect.model_validate({"availability": "> 99%"}),
    )

    assert at_least.misses(_window(99, 1)) == []
    assert above.misses(_window(99, 1)) == ["availability 99% <= 99%"]
    assert Expect.model_validate({"availability": "99%"}).misses(_window(98, 2)) == ["availability 98% < 99%"]


def test_a_probe_tolerance_takes_the_comparison_form() -> None:
    at = datetime.now(UTC)
    samples = [Sample(ok=True, latency=0.01), Sample(ok=False, latency=0.01, problem="503")]
    probe = {"name": "p", "command": {"run": "true"}, "samples": 2}

    bare = Probe.model_validate({**probe, "tolerance": {"error_rate": "50%"}})
    strict = Probe.model_validate({**probe, "tolerance": {"error_rate": "< 50%"}})

    assert judge(bare, Phase.PREFLIGHT, samples, at).ok
    result = judge(strict, Phase.PREFLIGHT, samples, at)
    assert not result.ok and result.problems[0] == "error rate 50% >= 50%"


def test_a_probe_guardrail_written_with_ge_trips_at_equality_where_the_bare_form_does_not() -> None:
    at_or_above = Guardrail(name="g", probe="p", error_rate=">= 50%", window=2)  # type: ignore[arg-type]
    above = Guardrail(name="h", probe="p", error_rate="50%", window=2)  # type: ignore[arg-type]
    watch = GuardrailWatch([at_or_above, above])
    for guard in (at_or_above, above):
        watch.record(guard, Sample(ok=True, latency=0.01))
        watch.record(guard, Sample(ok=False, latency=0.01, problem="down"))

    crossed = watch.breach()

    assert crossed is not None and crossed[0].name == "g" and ">= 50%" in crossed[1]


def _drill(observe: str) -> str:
    return f"""name: t
targets: {{svc: {{command: {{}}}}}}
hypothesis: [{{name: up, command: {{run: "true"}}}}]
faults: [{{target: svc, action: run, run: "true", revert: "true"}}]
observe:
{observe}
"""


@pytest.mark.parametrize(
    ("observe", "where", "words"),
    [
        (
            '  traffic: {url: "http://127.0.0.1:1/", rate: 1/s}\n  expect: {availability: "<= 99%"}',
            "observe.expect.availability",
            "write '>= 99%', '> 99%' or 99%",
        ),
        (
            '  traffic: {url: "http://127.0.0.1:1/", rate: 1/s}\n  guardrails: [{error_rate: "< 50%"}]',
            "observe.guardrails[0].error_rate",
            "breaches when it rises above",
        ),
        ('  guardrails: [{error_rate: "> 50%", for: 10s}]', "observe.guardrails[0]", "needs observe.traffic"),
        (
            '  traffic: {url: "http://127.0.0.1:1/", rate: 1/s}\n  guardrails: [{error_rate: 5%}, {error_rate: 5%}]',
            "observe.guardrails[1].name",
            "'error_rate > 5%' is used twice",
        ),
        ("  guardrails: [{probe: up, failing: 2, for: 3s}]", "observe.guardrails[0]", "a probe guardrail counts"),
        ("  min_coverage: '=< 80%'", "observe.min_coverage", "points the wrong way"),
    ],
)
def test_validate_locates_a_threshold_written_the_wrong_way(
    tmp_path: Path, observe: str, where: str, words: str
) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text(_drill(observe))

    result = CliRunner().invoke(app, ["validate", str(drill)])

    assert result.exit_code == 1, result.output
    assert "drill.yaml:" in result.output and f"{where}:" in result.output and words in result.output


def test_every_threshold_accepts_both_forms_and_a_guardrail_gets_a_name_from_its_condition() -> None:
    drill = Drill.model_validate(
        {
            "name": "t",
            "targets": {"svc": {"command": {}}},
            "hypothesis": [
                {
                    "name": "up",
                    "command": {"run": "true"},
                    "tolerance": {"error_rate": "<= 5%", "latency_p95": "< 1s", "latency_max": "2s"},
                }
            ],
            "faults": [{"target": "svc", "action": "run", "run": "true", "revert": "true"}],
            "observe": {
                "min_coverage": ">= 90%",
                "traffic": {"url": "http://127.0.0.1:1/", "rate": "5/s"},
                "expect": {"error_rate": "< 1%", "latency_p99": "<= 2s"},
                "guardrails": [
                    {"availability": "< 50%", "for": "5s"},
                    {"latency_p95": ">= 3s"},
                    {"probe": "up", "latency_p99": "> 1s"},
                ],
            },
        }
    )

    assert drill.observe.min_coverage == 0.9
    assert [g.name for g in drill.observe.guardrails] == [
        "availability < 50% for 5s",
        "latency_p95 >= 3s",
        "up latency_p99 > 1s",
    ]
    assert [g.name for g in drill.observe.traffic.guardrails] == [  # type: ignore[union-attr]
        "availability < 50% for 5s",
        "latency_p95 >= 3s",
    ]


def _second(n: int, ok: int, failed: int) -> SecondStats:
    return SecondStats(second=n, sent=ok + failed, ok=ok, timeouts=failed)


def test_a_traffic_guardrail_trips_only_once_its_condition_has_held_for_its_for_without_a_break() -> None:
    (guard,) = Drill.model_validate(
        {
            "name": "t",
            "targets": {"svc": {"command": {}}},
            "faults": [{"target": "svc", "action": "run", "run": "true", "revert": "true"}],
            "observe": {
                "traffic": {"url": "http://127.0.0.1:1/", "rate": "5/s"},
                "guardrails": [{"error_rate": "> 50%", "for": "3s"}],
            },
        }
    ).observe.traffic.guardrails  # type: ignore[union-attr]
    phases = {0: "before", 1: "during x", 2: "during x", 3: "during x", 4: "during x", 5: "during x", 6: "during x"}
    guards = TrafficGuards([guard], lambda second: phases.get(int(second), "rollback"))

    assert guards.see(_second(0, 0, 10)) is None  # before any fault: not guarded
    assert guards.see(_second(1, 0, 10)) is None
    assert guards.see(_second(2, 0, 10)) is None
    assert guards.see(_second(3, 10, 0)) is None  # a healthy second breaks the streak
    assert guards.see(_second(4, 0, 10)) is None
    assert guards.see(_second(5, 0, 0)) is None  # nothing completed: no evidence, the streak goes on
    tripped = guards.see(_second(6, 1, 9))
    assert tripped is not None
    assert tripped[1] == "traffic error rate 90% > 50% for 3s"
    assert guards.see(_second(6, 0, 10)) is None  # it trips once


def test_a_traffic_guardrail_ignores_the_rollback_and_the_recovery() -> None:
    guard = Guardrail(name="g", error_rate="> 50%").for_traffic()  # type: ignore[arg-type]
    guards = TrafficGuards([guard], lambda second: "rollback" if second < 2 else "after")

    assert all(guards.see(_second(n, 0, 10)) is None for n in range(4))


def test_comparisons_survive_a_round_trip_and_a_bare_value_keeps_its_old_meaning() -> None:
    expect = Expect.model_validate({"availability": "> 99%", "latency_p95": "800ms"})

    back = Expect.model_validate(expect.model_dump(mode="json"))

    assert back == expect and back.comparisons == {"availability": ">"}
    assert timedelta(milliseconds=800) == back.latency_p95
