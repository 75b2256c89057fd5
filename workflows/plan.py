"""The plan of a drill in words: what it may touch, what it checks, what it breaks and how each fault is undone.

Pure functions over the validated model, used by ``gameday run --dry-run`` (and reports), never by workflow code.
"""

from __future__ import annotations

from workflows.drill import CallFault, Drill, Fault, KillFault, PauseFault, RunFault, Target
from workflows.units import format_duration


def describe_target(target: Target) -> str:
    if target.process is not None:
        where = f"pid {target.process.pid}" if target.process.pid else f"pidfile {target.process.pidfile}"
        return f"process ({where})"
    if target.command is not None:
        return f"local shell ({target.command.shell})"
    if target.http is not None:
        return f"http {target.http.base_url}"
    if target.docker is not None:
        return f"docker container {target.docker.container}"
    assert target.proxy is not None
    return f"proxy {target.proxy.listen} -> {target.proxy.upstream}"


def describe_fault(fault: Fault) -> tuple[str, str]:
    """What applying ``fault`` does, and what its revert does."""
    if isinstance(fault, PauseFault):
        return "SIGSTOP the process", "SIGCONT the same process (checked by start time)"
    if isinstance(fault, KillFault):
        return f"send {fault.signal}", "run the target's restart command if the process is not running"
    if isinstance(fault, RunFault):
        return f"run `{fault.run}` (timeout {format_duration(fault.timeout)})", f"run `{fault.revert}`"
    if isinstance(fault, CallFault):
        return (
            f"{fault.request.method} {fault.request.path}",
            f"{fault.revert.method} {fault.revert.path}",
        )
    raise AssertionError(f"no description for {type(fault).__name__}")


def plan_lines(drill: Drill) -> list[str]:
    """The drill's plan, one line each, in the order things would happen."""
    lines = [
        f"drill {drill.name}" + (f" (team {drill.team})" if drill.team else ""),
        f"max_duration {format_duration(drill.max_duration)}: rollback is forced then",
        "targets (the only things this drill may touch):",
    ]
    lines += [f"  {name}: {describe_target(target)}" for name, target in drill.targets.items()]
    lines.append(f"preflight: {len(drill.hypothesis)} hypothesis probe(s) must hold, else nothing is injected")
    lines += [f"  {probe.name}: {probe.kind.value}, {probe.samples} sample(s)" for probe in drill.hypothesis]
    lines.append("inject (each revert registered before its fault is applied):")
    for index, fault in enumerate(drill.faults):
        apply, revert = describe_fault(fault)
        early = f"; reverted after {format_duration(fault.duration)}" if fault.duration else ""
        lines.append(f"  {index + 1}. {fault.label}: {apply}{early}")
        lines.append(f"     revert: {revert}")
    lines.append(
        f"observe: {format_duration(drill.observe.duration)}, probes every {format_duration(drill.observe.interval)}"
    )
    lines.append(
        "rollback: every revert, in reverse order: " + (", ".join(f.label for f in reversed(drill.faults)) or "none")
    )
    lines.append(f"verify: hypothesis must hold again within {format_duration(drill.recovery.within)}")
    return lines
