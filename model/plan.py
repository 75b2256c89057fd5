"""The plan of a drill in words: what it may touch, what it checks, what it breaks and how each fault is undone.

Pure functions over the validated model, used by ``gameday run --dry-run`` (and reports), never by workflow code.
"""

from __future__ import annotations

from gameday.model.drill import (
    Drill,
    Fault,
    Guardrail,
    Target,
)
from gameday.model.kinds import registry
from gameday.model.locks import lockable_targets
from gameday.model.units import format_duration


def describe_target(target: Target) -> str:
    """The target in words, as its kind describes it (``model/kinds/<kind>.py``)."""
    kind = registry.target_kind(target.kind.value)
    return kind.describe(target.spec) if kind is not None else f"{target.kind.value} target"


def describe_fault(fault: Fault, target: Target | None = None) -> tuple[str, str]:
    """What applying ``fault`` to ``target`` does, and what its revert does (without a target: as the first kind
    the fault applies to describes it)."""
    kind = registry.target_kind(target.kind.value) if target is not None else None
    if kind is None or type(fault) not in kind.faults:
        kinds = registry.kinds_of_fault(fault)
        kind = kinds[0] if kinds else None
    if kind is None:
        return fault.action_name, "its revert"
    return kind.describe_fault(fault)


def plan_lines(drill: Drill) -> list[str]:
    """The drill's plan, one line each, in the order things would happen."""
    lines = [
        f"drill {drill.name}" + (f" (team {drill.team})" if drill.team else ""),
        f"max_duration {format_duration(drill.max_duration)}: rollback is forced then",
        "targets (the only things this drill may touch):",
    ]
    lines += [f"  {name}: {describe_target(target)}" for name, target in drill.targets.items()]
    locked = lockable_targets(drill)
    if locked:
        lines.append(
            f"preflight: lock what {', '.join(locked)} resolve(s) to on the worker then (pid + start time, real "
            "pidfile path, container id, ip:port): not found, or held by another drill, ends the drill untouched"
        )
    lines.append(f"preflight: {len(drill.hypothesis)} hypothesis probe(s) must hold, else nothing is injected")
    lines += [f"  {probe.name}: {probe.kind.value}, {probe.samples} sample(s)" for probe in drill.hypothesis]
    lines.append("inject (each revert registered before its fault is applied):")
    for index, fault in enumerate(drill.faults):
        apply, revert = describe_fault(fault, drill.targets.get(fault.target))
        early = f"; reverted after {format_duration(fault.duration)}" if fault.duration else ""
        lines.append(f"  {index + 1}. {fault.label}: {apply}{early}")
        lines.append(f"     revert: {revert}")
    lines.append(
        f"observe: {format_duration(drill.observe.duration)}, probes every {format_duration(drill.observe.interval)}"
    )
    for guard in drill.observe.guardrails:
        lines.append(f"  guardrail {guard.name}: {_guard(guard)}: a breach stops the drill and rolls back")
    for probe in drill.observe.watch:
        kept = f", records {probe.http.record}" if probe.http is not None and probe.http.record else ""
        lines.append(f"  watch {probe.name}: {probe.kind.value}{kept}, from the first fault to the end of verify")
    lines.append(
        "rollback: every revert, in reverse order: " + (", ".join(f.label for f in reversed(drill.faults)) or "none")
    )
    lines.append(f"verify: hypothesis must hold again within {format_duration(drill.recovery.within)}")
    if any(t.proxy is not None for t in drill.targets.values()):
        lines.append("proxies are held by one worker from preflight until after verify")
    return lines


def _guard(guard: Guardrail) -> str:
    if guard.stop_when is not None:
        return "stop when its own probe succeeds"
    parts = [
        f"{guard.failing} failures in a row" if guard.failing else "",
        f"error rate > {guard.error_rate * 100:g}%" if guard.error_rate is not None else "",
        f"p95 > {format_duration(guard.latency_p95)}" if guard.latency_p95 else "",
        f"p99 > {format_duration(guard.latency_p99)}" if guard.latency_p99 else "",
    ]
    return f"probe {guard.probe}: " + " or ".join(p for p in parts if p) + f" (window {guard.window})"
