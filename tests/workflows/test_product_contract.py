"""The drill-file example of PRODUCT.md is a contract: it loads as written, and means what it says.

``tests/drills/contract/product_example.yaml`` is that example, byte for byte (checked against PRODUCT.md itself
wherever the product documents sit beside the repository, as they do on the team's machines).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from typer.testing import CliRunner

from gameday.cli.main import app
from gameday.model.drill import Drill
from gameday.model.loader import load_drill_file

EXAMPLE = Path(__file__).parents[1] / "drills" / "contract" / "product_example.yaml"
PRODUCT = Path(__file__).parents[2].parent / "shared" / "PRODUCT.md"


def test_the_example_is_product_md_s_own_text_wherever_product_md_is_at_hand() -> None:
    text = EXAMPLE.read_text()
    assert text.startswith("version: 1\nname: checkout-db-outage\n")
    assert 'expect: {availability: ">= 99%", latency_p95: "< 800ms"}' in text
    assert '- {error_rate: "> 50%", for: 10s}' in text
    if PRODUCT.exists():  # the product documents beside the checkout: the copy must not drift from them
        block = re.search(r"```yaml\n(.*?)```", PRODUCT.read_text(), re.DOTALL)
        assert block is not None and block.group(1) == text


def test_gameday_validate_accepts_the_product_example_as_written() -> None:
    result = CliRunner().invoke(app, ["validate", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    assert "valid:" in result.output and "checkout-db-outage" in result.output


def test_the_product_example_means_what_it_says() -> None:
    drill = load_drill_file(EXAMPLE)

    expect = drill.observe.expect
    assert expect is not None
    assert (expect.availability, expect.latency_p95) == (0.99, timedelta(milliseconds=800))
    assert expect.shown("availability") == ">= 99%" and expect.shown("latency_p95") == "< 800ms"
    (guard,) = drill.observe.guardrails
    assert guard.on_traffic and guard.name == "error_rate > 50% for 10s"
    assert (guard.error_rate, guard.for_) == (0.5, timedelta(seconds=10))
    # The traffic judges it, second by second (tests/workflows/test_traffic_guardrails.py runs one for real).
    assert drill.observe.traffic is not None
    assert [g.name for g in drill.observe.traffic.guardrails] == [guard.name]
    assert drill.observe.traffic.guardrails[0].for_ == timedelta(seconds=10)


def test_the_product_example_survives_temporal_s_payload_converter_unchanged() -> None:
    drill = load_drill_file(EXAMPLE)
    converter = pydantic_data_converter.payload_converter

    (back,) = converter.from_payloads(converter.to_payloads([drill]), [Drill])

    assert back == drill
