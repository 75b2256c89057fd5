"""When ``gameday pause`` can still hold a drill, in words: the answer of DrillWorkflow's ``request_pause`` update.

A drill holds only at its pause points, between the phases before the observation: after preflight, after the
go/no-go gate, after inject. Once the observation has started none is left (rollback is never paused), so a pause
then would do nothing: it is refused, and the way out is ``gameday stop``.
"""

from __future__ import annotations

from gameday.model.records import Phase

TAKES_EFFECT: dict[Phase, str] = {
    Phase.PENDING: "when its preflight ends, before any fault",
    Phase.PREFLIGHT: "when its preflight ends, before any fault",
    Phase.APPROVAL: "once it is approved, before it injects",
    Phase.INJECT: "once its faults are applied, before the observation",
}
"""The next pause point from each phase that still has one."""


def takes_effect(phase: Phase) -> str | None:
    """When a pause requested in ``phase`` holds the drill; ``None`` when no pause point is left."""
    return TAKES_EFFECT.get(phase)


def refusal(phase: Phase) -> str:
    """Why a pause requested in ``phase`` (past the last pause point) would never take effect."""
    if phase == Phase.OBSERVE:
        return "it is observing: a drill holds only between the phases before the observation, and those are past"
    return f"it is past its observation (phase {phase.value}): nothing is left to pause, it ends on its own"
