"""The registry of kinds: every target, fault and probe kind gameday knows, read by everything else.

The drill model builds its ``Target``, ``Fault`` and ``Probe`` from these lists; ``--dry-run`` describes, the
locks key, the workflow budgets and routes, and the activities dispatch through them. Adding a kind is one
module under ``model/kinds/`` and one line here (docs/ADDING_A_KIND.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gameday.model.kinds import (
    chaostoolkit,
    command,
    docker,
    file,
    host,
    http,
    probe_chaostoolkit,
    probe_command,
    probe_http,
    probe_prometheus,
    probe_tcp,
    process,
    proxy,
)
from gameday.model.kinds.base import DEFAULT_PROBE_TIMEOUT, FaultBase, ProbeKindSpec, TargetKindSpec

TARGET_KINDS: tuple[TargetKindSpec[Any], ...] = (
    process.KIND,
    command.KIND,
    http.KIND,
    docker.KIND,
    proxy.KIND,
    file.KIND,
    host.KIND,
    chaostoolkit.KIND,
)
"""Every target kind, in the order the drill format lists them (and a target's error message names them)."""

PROBE_KINDS: tuple[ProbeKindSpec[Any], ...] = (
    probe_http.KIND,
    probe_tcp.KIND,
    probe_command.KIND,
    probe_prometheus.KIND,
    probe_chaostoolkit.KIND,
)
"""Every probe kind, in the order the drill format lists them."""

_TARGETS = {kind.key: kind for kind in TARGET_KINDS}
_PROBES = {kind.key: kind for kind in PROBE_KINDS}


def target_kind(key: str) -> TargetKindSpec[Any] | None:
    """The target kind named ``key``, ``None`` if this version does not know it."""
    return _TARGETS.get(key)


def probe_kind(key: str) -> ProbeKindSpec[Any] | None:
    """The probe kind named ``key``, ``None`` if this version does not know it."""
    return _PROBES.get(key)


def fault_models() -> tuple[type[FaultBase], ...]:
    """Every fault model once, in the order the kinds list them (``pause`` and ``kill`` serve two kinds)."""
    seen: dict[type[FaultBase], None] = {}
    for kind in TARGET_KINDS:
        seen.update(dict.fromkeys(kind.faults))
    return tuple(seen)


def actions_by_kind() -> dict[str, frozenset[str]]:
    """Target kind → the actions that apply to it."""
    return {kind.key: kind.actions for kind in TARGET_KINDS}


def kinds_of_fault(fault: FaultBase) -> list[TargetKindSpec[Any]]:
    """The target kinds a fault's model applies to."""
    return [kind for kind in TARGET_KINDS if type(fault) in kind.faults]


def probe_timeout(key: str, spec: Any) -> timedelta:
    """How long one sample of a probe may take; a kind this version does not know gets a default, never an error
    (a workflow must not fail a task over a probe a newer drill brings)."""
    kind = _PROBES.get(key)
    if kind is None:
        found = getattr(spec, "timeout", None)
        return found if isinstance(found, timedelta) else DEFAULT_PROBE_TIMEOUT
    return kind.timeout(spec)
