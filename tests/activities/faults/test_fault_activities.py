"""The activity boundary itself: dispatch by target kind, refusals, heartbeats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.model.drill import CommandTarget, DockerTarget, PauseFault, ProcessTarget, RunFault, Target, TargetKind
from gameday.model.kinds import registry

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import FaultInputFactory


@pytest.mark.parametrize("fault_activity", [apply_fault, revert_fault])
async def test_a_kind_without_a_provider_is_a_non_retryable_unsupported_fault(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, fault_activity: Any, monkeypatch: Any
) -> None:
    monkeypatch.delitem(registry._TARGETS, TargetKind.DOCKER.value)  # a worker that does not know the kind
    target = Target(docker=DockerTarget(container="shop-db"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(fault_activity, fault_input(target, PauseFault(action="pause", target="db")))

    assert raised.value.type == "UnsupportedFault"
    assert raised.value.non_retryable


async def test_an_action_the_kind_lacks_is_a_non_retryable_unsupported_fault(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory
) -> None:
    target = Target(process=ProcessTarget(pid=12345))
    fault = RunFault(action="run", target="api", run="true", revert="true")

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, fault))

    assert raised.value.type == "UnsupportedFault"
    assert raised.value.non_retryable


async def test_apply_heartbeats_while_the_provider_works(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, tmp_path: Path
) -> None:
    heartbeats: list[tuple[Any, ...]] = []
    activity_env.on_heartbeat = lambda *details: heartbeats.append(details)
    target = Target(command=CommandTarget(cwd=str(tmp_path)))

    await activity_env.run(
        apply_fault, fault_input(target, RunFault(action="run", target="s", run="sleep 0.3", revert="true"))
    )

    assert heartbeats
