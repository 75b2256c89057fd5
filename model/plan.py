"""The plan of a drill in words: what it may touch, what it checks, what it breaks and how each fault is undone.

Pure functions over the validated model, used by ``gameday run --dry-run`` (and reports), never by workflow code.
"""

from __future__ import annotations

from datetime import timedelta

from gameday.model.drill import (
    CallFault,
    DisconnectFault,
    Drill,
    ExecFault,
    Fault,
    Guardrail,
    KillFault,
    LimitCpuFault,
    LimitMemoryFault,
    PauseFault,
    RestartFault,
    RunFault,
    StopFault,
    Target,
    ToxicFault,
)
from gameday.model.locks import lockable_targets
from gameday.model.units import format_duration


def describe_target(target: Target) -> str:
    if target.process is not None:
        where = f"pid {target.process.pid}" if target.process.pid else f"pidfile {target.process.pidfile}"
        return f"process ({where})"
    if target.command is not None:
        return f"local shell ({target.command.shell})"
    if target.http is not None:
        return f"http {target.http.base_url}"
    if target.docker is not None:
        docker = target.docker
        if docker.container is not None:
            return f"docker container {docker.container}"
        labels = ",".join(f"{k}={v}" for k, v in (docker.labels or {}).items())
        share = f"{docker.count} of" if docker.count else f"{docker.percent * 100:g}% of" if docker.percent else "all"
        return f"docker: {share} the running containers labelled {labels} (and gameday.target=true)"
    assert target.proxy is not None
    return f"proxy {target.proxy.listen} -> {target.proxy.upstream}"


def describe_fault(fault: Fault, target: Target | None = None) -> tuple[str, str]:
    """What applying ``fault`` to ``target`` does, and what its revert does."""
    if target is not None and target.docker is not None:
        return _docker_fault(fault)
    if isinstance(fault, ToxicFault):
        params = fault.model_dump(exclude={"action", "target", "duration", "name", "stream", "toxicity"})
        shown = ", ".join(f"{k} {_shown(v)}" for k, v in params.items())
        share = f", {fault.toxicity * 100:g}% of connections" if fault.toxicity < 1 else ""
        return f"add toxic {fault.action} ({shown}) {fault.stream}{share}", "remove the toxic"
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


def _docker_fault(fault: Fault) -> tuple[str, str]:
    started_again = "start the containers that were running before"
    if isinstance(fault, PauseFault):
        return "docker pause the container(s)", "docker unpause them"
    if isinstance(fault, KillFault):
        return f"send {fault.signal} to the container(s)", started_again
    if isinstance(fault, StopFault):
        return f"docker stop (SIGKILL after {format_duration(fault.timeout)})", started_again
    if isinstance(fault, RestartFault):
        return "docker restart", "start any that are not running"
    if isinstance(fault, DisconnectFault):
        return f"disconnect from network {fault.network}", "reconnect to it"
    if isinstance(fault, LimitCpuFault):
        return f"limit to {fault.cpus:g} CPU(s)", "restore the previous CPU limits"
    if isinstance(fault, LimitMemoryFault):
        return f"limit memory to {fault.memory // 1024**2} MiB", "restore the previous memory limits"
    if isinstance(fault, ExecFault):
        return f"exec `{fault.run}` in the container(s)", f"exec `{fault.revert}`"
    raise AssertionError(f"no docker description for {type(fault).__name__}")


def _shown(value: object) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)


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
