"""The workflows' typed activity stubs match, name for name and type for type, the activities the worker registers."""

from __future__ import annotations

import ast
import typing
from pathlib import Path
from typing import Any

from temporalio import activity

from gameday.workflows import activity_stubs

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_MODULES = sorted((ROOT / "workflows").glob("*.py"))


def _registered() -> dict[str, Any]:
    """Every activity a gameday worker registers, by name (the lists ``worker.main.build_worker`` hands Temporal)."""
    from gameday.activities.blackout import check_blackout
    from gameday.activities.faults.activities import FaultActivities, capture_target
    from gameday.activities.freeze import FreezeActivities
    from gameday.activities.gameday_store import GameDayActivities
    from gameday.activities.locks import LockActivities
    from gameday.activities.notify.activities import NotifyActivities
    from gameday.activities.notify.alert import AlertActivities
    from gameday.activities.policy import check_policy
    from gameday.activities.probes import check_hypothesis, observe, verify_recovery
    from gameday.activities.probes.watch import watch
    from gameday.activities.proxy.activities import WorkerQueueActivities, hold_proxy, proxy_ready
    from gameday.activities.resolve import resolve_targets
    from gameday.activities.sites import SiteActivities
    from gameday.activities.store import StoreActivities
    from gameday.activities.traffic.activities import TrafficActivities
    from gameday.activities.traffic.read_back import read_back

    methods = [
        FaultActivities.apply_fault,
        FaultActivities.revert_fault,
        FreezeActivities.check_freeze,
        StoreActivities.record_run,
        GameDayActivities.record_gameday,
        LockActivities.acquire_targets,
        LockActivities.release_targets,
        AlertActivities.alert,
        NotifyActivities.notify_slack,
        NotifyActivities.notify_webhook,
        WorkerQueueActivities.worker_queue,
        TrafficActivities.hold_traffic,
        TrafficActivities.mark_traffic,
        SiteActivities.check_sites,
    ]
    functions = [
        check_hypothesis,
        observe,
        watch,
        verify_recovery,
        capture_target,
        resolve_targets,
        check_blackout,
        check_policy,
        hold_proxy,
        proxy_ready,
        read_back,
    ]
    found: dict[str, Any] = {}
    for fn in [*methods, *functions]:
        defn = activity._Definition.from_callable(fn)
        assert defn is not None and defn.name is not None
        found[defn.name] = fn
    return found


def _types(fn: Any) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(fn)
    returned = hints.pop("return")
    return list(hints.values()), returned


def test_every_stub_has_the_name_argument_and_result_types_of_the_activity_the_worker_registers() -> None:
    registered = _registered()
    for stub in activity_stubs.ALL:
        defn = activity._Definition.from_callable(stub)
        assert defn is not None and defn.name in registered, f"no worker activity named {defn and defn.name}"
        assert _types(stub) == _types(registered[defn.name]), defn.name


def test_every_activity_the_worker_registers_has_a_stub() -> None:
    names = {activity._Definition.from_callable(stub).name for stub in activity_stubs.ALL}  # type: ignore[union-attr]
    assert set(_registered()) == names


def test_workflow_code_calls_activities_through_stubs_never_by_a_string_name() -> None:
    for path in WORKFLOW_MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in {"execute_activity", "start_activity"} and node.args:
                first = node.args[0]
                assert not isinstance(first, ast.Constant), f"{path.name}:{node.lineno} calls {first.value!r} by name"
                assert not any(k.arg == "result_type" for k in node.keywords), f"{path.name}:{node.lineno}"
