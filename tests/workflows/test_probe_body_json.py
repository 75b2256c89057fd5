"""A drill whose probe asserts on a JSON value holds or deviates as that value says (issue 15 §2).

Real parts: a dev Temporal server, a worker, a loopback HTTP server answering the JSON of a file, and a
``command`` fault that rewrites that file (its revert restores it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Phase, Verdict
from tests.harness import finish, running_worker, start_drill
from tests.loopback import serve_loopback

pytestmark = pytest.mark.integration


@pytest.fixture
def health(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(url, file)``: the server answers ``file``'s text as its body on every path."""
    state = tmp_path / "health.json"
    state.write_text(json.dumps({"breaker": {"state": "CLOSED"}}))

    with serve_loopback(lambda path: (state.read_bytes(), None), "body-json-health") as url:
        yield f"{url}/health", state


def _drill(name: str, url: str, state: Path, mode: str) -> str:
    opened = json.dumps(json.dumps({"breaker": {"state": "OPEN"}}))
    closed = json.dumps(json.dumps({"breaker": {"state": "CLOSED"}}))
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: breaker
    mode: {mode}
    http: {{url: "{url}", body_json: {{path: breaker.state, equals: CLOSED}}}}
faults:
  - {{name: trip, target: sh, action: run, run: {json.dumps(f"printf %s {opened} > {state}")},
      revert: {json.dumps(f"printf %s {closed} > {state}")}}}
observe: {{duration: 400ms, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms, consecutive: 2}}
"""


async def test_a_json_value_judges_the_drill(client: Client, health: tuple[str, Path], tmp_path: Path) -> None:
    url, state = health
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        # Under fault the breaker is OPEN: a probe that runs then deviates, saying why.
        deviated = await finish(await start_drill(client, queue, _drill("json-open", url, state, "always")), "json1")
        # The same probe judged only before and after the fault: CLOSED both times.
        held = await finish(await start_drill(client, queue, _drill("json-edge", url, state, "edge")), "json2")

    assert deviated.verdict == Verdict.DEVIATED, deviated.summary
    [observed] = [p for p in deviated.probes if p.phase == Phase.OBSERVE]
    assert not observed.ok
    assert "breaker.state is 'OPEN', expected 'CLOSED'" in observed.problems
    assert held.verdict == Verdict.RESILIENT, held.summary
    assert json.loads(state.read_text()) == {"breaker": {"state": "CLOSED"}}  # the revert ran
