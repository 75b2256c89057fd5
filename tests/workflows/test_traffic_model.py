"""The ``observe.traffic`` section and the traffic summary: forms accepted, defaults applied, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from gameday.model.traffic import Latency, SecondStats, Timeline, Traffic, TrafficSummary, WindowStats


def test_the_product_shorthand_is_one_endpoint() -> None:
    traffic = Traffic.model_validate({"url": "http://127.0.0.1:8000/products", "rate": "50/s"})

    (endpoint,) = traffic.resolved()
    assert traffic.rate == 50.0
    assert endpoint.url == "http://127.0.0.1:8000/products"
    assert (endpoint.method, endpoint.weight, endpoint.timeout, endpoint.body) == (
        "GET",
        1.0,
        timedelta(seconds=2),
        None,
    )


def test_endpoints_take_the_sections_defaults_and_override_them() -> None:
    traffic = Traffic.model_validate(
        {
            "rate": "600/m",
            "timeout": "500ms",
            "headers": {"Authorization": "Bearer t", "X-Env": "drill"},
            "endpoints": [
                {"url": "http://127.0.0.1:8000/products", "weight": 3},
                {
                    "url": "http://127.0.0.1:8000/orders",
                    "method": "POST",
                    "json": {"sku": "a1", "qty": 1},
                    "headers": {"X-Env": "gameday"},
                    "timeout": "2s",
                },
            ],
        }
    )

    products, orders = traffic.resolved()
    assert traffic.rate == 10.0
    assert (products.weight, products.method, products.timeout) == (3.0, "GET", timedelta(milliseconds=500))
    assert products.headers == {"Authorization": "Bearer t", "X-Env": "drill"}
    assert orders.method == "POST" and orders.timeout == timedelta(seconds=2)
    assert orders.body == '{"sku":"a1","qty":1}'
    assert orders.headers == {"Authorization": "Bearer t", "X-Env": "gameday", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": "50/s"}, "exactly one of 'url' or 'endpoints'"),
        ({"rate": "50/s", "url": "http://a/", "endpoints": [{"url": "http://b/"}]}, "exactly one of"),
        ({"rate": "0/s", "url": "http://a/"}, "rate above 0/s"),
        ({"rate": "50", "url": "http://a/"}, "a rate like 50/s"),
        ({"rate": "50/s", "url": "ftp://a/"}, "http:// or https://"),
        ({"rate": "50/s", "url": "http://a/", "timeout": "0s"}, "timeout above 0s"),
        ({"rate": "50/s", "url": "http://a/", "body": "x", "json": {}}, "at most one of 'body' and 'json'"),
        ({"rate": "50/s", "endpoints": [{"url": "http://a/", "weight": 0}]}, "greater than 0"),
        ({"rate": "50/s", "url": "http://a/", "max_in_flight": 0}, "greater than or equal to 1"),
        ({"rate": "50/s", "url": "http://a/", "urls": []}, "Extra inputs are not permitted"),
    ],
)
def test_bad_traffic_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Traffic.model_validate(fields)


def test_a_traffic_section_survives_serialisation() -> None:
    traffic = Traffic.model_validate(
        {"rate": "50/s", "endpoints": [{"url": "http://a/", "json": [1, 2], "timeout": "1s"}]}
    )

    assert Traffic.model_validate_json(traffic.model_dump_json(by_alias=True)) == traffic


def test_timeline_columns_and_rows_round_trip() -> None:
    rows = [
        SecondStats(
            second=0,
            sent=50,
            ok=49,
            status_5xx=1,
            latency=Latency(p50=0.001, p90=0.002, p95=0.003, p99=0.0045, max=0.01),
        ),
        SecondStats(second=2, sent=50, timeouts=50),
    ]

    timeline = Timeline.of(rows)

    assert timeline.second == [0, 2]
    assert timeline.p99_us == [4500, None]
    assert timeline.points() == [*rows[:1], rows[1].model_copy(update={"latency": None})]
    with pytest.raises(ValidationError, match="one entry per second"):
        Timeline(second=[0], sent=[])


def test_outcome_rates_and_throughput() -> None:
    window = WindowStats(name="during", start=10.0, end=20.0, sent=100, ok=90, status_5xx=6, timeouts=2)

    assert window.completed == 98
    assert window.availability == pytest.approx(90 / 98)
    assert window.error_rate == pytest.approx(8 / 98)
    assert window.throughput == pytest.approx(9.8)
    assert WindowStats(name="empty", start=0).availability is None


def test_a_summary_round_trips_through_json() -> None:
    window = WindowStats(name="before", start=0.0, sent=3, ok=3, histogram="HISTFAAAAB")
    summary = TrafficSummary(
        started_at=datetime(2026, 1, 1, tzinfo=UTC), rate=50.0, elapsed=1.5, phases=[window], total=window
    )

    assert TrafficSummary.model_validate_json(summary.model_dump_json()) == summary


def test_the_format_docs_examples_are_valid() -> None:
    import yaml

    from gameday.model.drill import Observe
    from gameday.model.probe_prometheus import PrometheusProbe

    doc = (Path(__file__).parents[2] / "docs" / "DRILL_FORMAT.md").read_text(encoding="utf-8")
    section = doc.split("## `observe.traffic`, `observe.expect` and `prometheus` probes", 1)[1].split("\n## ", 1)[0]
    blocks = [yaml.safe_load(block.split("```", 1)[0]) for block in section.split("```yaml\n")[1:]]

    observes = [Observe.model_validate(b["observe"]) for b in blocks if "observe" in b]
    traffic = [o.traffic for o in observes if o.traffic is not None]
    probes = [PrometheusProbe.model_validate(p["prometheus"]) for b in blocks for p in b.get("hypothesis", [])]
    assert [len(t.resolved()) for t in traffic] == [1, 1, 2, 2]
    assert [o.expect.availability for o in observes if o.expect is not None] == [0.99, None]
    assert [t.has_ids() and t.read_back is not None for t in traffic] == [False, False, False, True]
    assert [p.max for p in probes] == [0.01, None]
