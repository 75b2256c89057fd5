"""The kind registry: complete, and each kind's description, lock key and time budget said in its own module."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest

from gameday.model.drill import Drill, Probe, ProbeKind, Target, TargetKind
from gameday.model.kinds import registry
from gameday.model.kinds.base import DEFAULT_APPLY_BUDGET, DEFAULT_PROBE_TIMEOUT, ProbeKindSpec, TargetKindSpec
from gameday.model.locks import lock_key
from gameday.model.plan import describe_fault, describe_target


def test_the_model_is_built_from_the_registry_every_kind_a_key_of_target_or_probe() -> None:
    assert [k.value for k in TargetKind] == [kind.key for kind in registry.TARGET_KINDS]
    assert [k.value for k in ProbeKind] == [kind.key for kind in registry.PROBE_KINDS]
    assert set(Target.model_fields) == {kind.key for kind in registry.TARGET_KINDS} | {"lock", "site"}
    assert {kind.key for kind in registry.PROBE_KINDS} <= set(Probe.model_fields)


def test_every_fault_model_is_a_drill_action_and_every_action_belongs_to_a_kind() -> None:
    actions = {action for kind in registry.TARGET_KINDS for action in kind.actions}
    assert actions == {
        model.model_fields["action"].annotation.__args__[0]  # type: ignore[union-attr]
        for model in registry.fault_models()
    }
    assert len(registry.fault_models()) == len(actions)  # one model per action, shared ones listed once


@pytest.mark.parametrize("kind", registry.TARGET_KINDS, ids=lambda kind: kind.key)
def test_every_target_kind_has_a_provider_with_capture_apply_and_revert(kind: TargetKindSpec[Any]) -> None:
    provider = importlib.import_module(kind.provider)
    for name in ("capture", "apply", "revert"):
        assert callable(getattr(provider, name)), f"{kind.provider}.{name}"


@pytest.mark.parametrize("kind", registry.PROBE_KINDS, ids=lambda kind: kind.key)
def test_every_probe_kind_has_a_sampler(kind: ProbeKindSpec[Any]) -> None:
    assert callable(importlib.import_module(kind.sampler).take_sample)


TARGETS = {
    "process": (
        {"pidfile": "/run/api.pid", "restart": "api"},
        "process (pidfile /run/api.pid)",
        "process:/run/api.pid",
    ),
    "command": ({}, "local shell (/bin/sh)", None),
    "http": ({"base_url": "http://127.0.0.1:9/"}, "http http://127.0.0.1:9", "http:http://127.0.0.1:9"),
    "docker": ({"container": "db"}, "docker container db", 'docker:{"container":"db"}'),
    "proxy": (
        {"listen": "127.0.0.1:15432", "upstream": "127.0.0.1:5432"},
        "proxy 127.0.0.1:15432 -> 127.0.0.1:5432",
        'proxy:{"listen":"127.0.0.1:15432","upstream":"127.0.0.1:5432"}',
    ),
    "file": ({"path": "/srv/app.conf"}, "file /srv/app.conf", "file:/srv/app.conf"),
    "host": ({}, "host (the worker's, or its site's)", None),  # locked per resource on the host, when applied
}


@pytest.mark.parametrize("key", sorted(TARGETS))
def test_each_target_kind_describes_itself_and_names_its_lock(key: str) -> None:
    spec, described, locked = TARGETS[key]
    target = Target.model_validate({key: spec})
    assert describe_target(target) == described
    assert lock_key(target) == locked
    assert lock_key(Target.model_validate({key: spec, "lock": "shop"})) == "lock:shop"


def _fault(target: dict[str, object], fault: dict[str, object]) -> tuple[Target, object]:
    drill = Drill.model_validate(
        {"name": "d", "targets": {"t": target}, "faults": [{"target": "t", **fault}], "observe": {"duration": "1s"}}
    )
    return drill.targets["t"], drill.faults[0]


@pytest.mark.parametrize(
    ("target", "fault", "budget"),
    [
        ({"command": {}}, {"action": "run", "run": "x", "revert": "y", "timeout": "5s"}, timedelta(seconds=25)),
        (
            {"http": {"base_url": "http://h"}},
            {"action": "call", "request": {"timeout": "3s"}, "revert": {}},
            timedelta(seconds=23),
        ),
        ({"docker": {"container": "db"}}, {"action": "stop", "timeout": "7s"}, timedelta(seconds=27)),
        ({"docker": {"container": "db"}}, {"action": "restart"}, timedelta(seconds=30)),
        ({"docker": {"container": "db"}}, {"action": "exec", "run": "x", "revert": "y"}, timedelta(seconds=40)),
        ({"docker": {"container": "db"}}, {"action": "pause"}, DEFAULT_APPLY_BUDGET),
        ({"process": {"pid": 4242}}, {"action": "pause"}, DEFAULT_APPLY_BUDGET),
        ({"file": {"path": "/srv/a"}}, {"action": "remove"}, DEFAULT_APPLY_BUDGET),
        ({"file": {"path": "/srv/a"}}, {"action": "fill", "size": "500m"}, timedelta(seconds=40)),
        ({"host": {}}, {"action": "disk_fill", "path": "/tmp", "size": "2000MiB"}, timedelta(seconds=40)),
        ({"host": {}}, {"action": "disk_fill", "path": "/tmp", "leave_free": "1g"}, timedelta(minutes=5)),
        ({"host": {}}, {"action": "connections", "address": "127.0.0.1:5", "count": 2000}, timedelta(seconds=40)),
        ({"host": {}}, {"action": "cpu"}, DEFAULT_APPLY_BUDGET),
        (
            {"proxy": {"listen": "127.0.0.1:1", "upstream": "127.0.0.1:2"}},
            {"action": "reset", "timeout": "90s"},  # a toxic's timeout is what it does, not how long applying takes
            DEFAULT_APPLY_BUDGET,
        ),
    ],
)
def test_each_fault_says_its_own_apply_budget(
    target: dict[str, object], fault: dict[str, object], budget: timedelta
) -> None:
    _, model = _fault(target, fault)
    assert model.apply_budget() == budget  # type: ignore[attr-defined]


def test_a_fault_is_described_by_the_kind_of_its_target() -> None:
    target, fault = _fault({"docker": {"container": "db"}}, {"action": "pause"})
    assert describe_fault(fault, target) == ("docker pause the container(s)", "docker unpause them")  # type: ignore[arg-type]
    target, fault = _fault({"process": {"pid": 4242}}, {"action": "pause"})
    assert describe_fault(fault, target)[0] == "SIGSTOP the process"  # type: ignore[arg-type]


def test_a_probe_kind_the_registry_does_not_know_gets_a_default_budget_never_an_error() -> None:
    assert registry.probe_timeout("http", Probe.model_validate({"name": "p", "http": {"url": "http://h"}}).spec) == (
        timedelta(seconds=2)
    )
    assert registry.probe_timeout("carrier-pigeon", object()) == DEFAULT_PROBE_TIMEOUT
