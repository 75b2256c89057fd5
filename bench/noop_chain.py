"""The raw Temporal round trip a drill's overhead is compared with: K no-op activities in sequence.

Imported by ``bench/orchestration_overhead.py`` as a top-level module (``bench/`` is on ``sys.path`` when
that script runs), so the workflow sandbox can re-import it by name. Deterministic: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class NoopInput:
    """One link of the chain."""

    step: int
    """Position in the chain; echoed back, so every activity has a small input and result like the drill's."""


@dataclass(frozen=True)
class ChainInput:
    """How many no-op activities to run, one after the other."""

    length: int
    """K: the number of activities the drill being compared with scheduled."""


@activity.defn(name="bench_noop")
async def noop(inp: NoopInput) -> int:
    """Does nothing: what is left of its duration is Temporal's round trip."""
    return inp.step


@workflow.defn(name="BenchNoopChain")
class NoopChainWorkflow:
    """Runs ``length`` no-op activities in sequence; returns how many ran."""

    @workflow.run
    async def run(self, inp: ChainInput) -> int:
        ran = 0
        for step in range(inp.length):
            await workflow.execute_activity(
                noop,
                NoopInput(step=step),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            ran += 1
        return ran
