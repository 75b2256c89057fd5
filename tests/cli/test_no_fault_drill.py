"""A drill with no faults (a game day's closing health check) is RESILIENT without claiming it held "under fault" or
that "the system recovered": nothing was injected (real dev server and ``gameday worker`` process)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import unique

pytestmark = pytest.mark.integration


def test_a_drill_without_faults_says_nothing_was_injected(gameday: Gameday) -> None:
    drill = gameday.drill(
        f"""
name: {unique("no-faults")}
hypothesis:
  - {{name: ok, command: {{run: "true"}}}}
observe: {{duration: 300ms, interval: 100ms}}
"""
    )

    result = gameday("run", str(drill), "--wait")

    assert result.exit_code == 0, result.output
    assert "RESILIENT: expectations held; no fault declared: nothing was injected" in result.stdout
    assert "under fault" not in result.stdout and "recovered" not in result.stdout
