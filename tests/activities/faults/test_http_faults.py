"""HTTP faults through the activities, against a real loopback server that records every call."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.model.drill import CallFault, HttpRequest, HttpTarget, Target
from gameday.model.records import FaultState

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import FaultInputFactory, Recorder


def service(base_url: str) -> Target:
    return Target(http=HttpTarget(base_url=base_url, headers={"X-Team": "payments", "X-Source": "target"}))


def call(
    path: str = "/chaos/latency", revert_path: str = "/chaos/latency", expect: list[int] | None = None
) -> CallFault:
    request = HttpRequest(
        method="PUT", path=path, json_body={"ms": 250}, headers={"X-Source": "request"}, expect_status=expect or [200]
    )
    return CallFault(
        action="call", target="api", request=request, revert=HttpRequest(method="DELETE", path=revert_path)
    )


async def test_call_and_revert_hit_their_paths_with_method_body_and_merged_headers(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, http_server: Recorder
) -> None:
    target, fault = service(http_server.base_url), call()

    applied = await activity_env.run(apply_fault, fault_input(target, fault))
    reverted = await activity_env.run(revert_fault, fault_input(target, fault, applied.changed))

    put, delete = http_server.calls
    assert (put.method, put.path, put.body) == ("PUT", "/chaos/latency", {"ms": 250})
    assert (put.headers["x-team"], put.headers["x-source"]) == ("payments", "request")
    assert (delete.method, delete.path, delete.body) == ("DELETE", "/chaos/latency", None)
    assert delete.headers["x-source"] == "target"
    assert applied.state is FaultState.APPLIED
    assert applied.output.startswith("200 ")
    assert reverted.state is FaultState.REVERTED


async def test_an_unexpected_status_on_call_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, http_server: Recorder
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(service(http_server.base_url), call(path="/status/503")))

    assert raised.value.type == "FaultApplyError"
    assert raised.value.non_retryable
    assert "503" in raised.value.message


async def test_an_unexpected_status_on_revert_is_a_retryable_revert_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, http_server: Recorder
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(
            revert_fault, fault_input(service(http_server.base_url), call(revert_path="/status/500"))
        )

    assert raised.value.type == "FaultRevertError"
    assert not raised.value.non_retryable
    assert "500" in raised.value.message


async def test_an_unreachable_service_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(service(f"http://127.0.0.1:{port}"), call()))

    assert raised.value.type == "FaultApplyError"
    assert raised.value.non_retryable


async def test_a_header_written_as_an_env_reference_is_sent_resolved_and_stays_a_reference_in_the_record(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    http_server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILL_TEST_FLAGS_TOKEN", "s3cret-value")
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "DRILL_TEST_FLAGS_TOKEN")
    target = Target(
        http=HttpTarget(
            base_url=http_server.base_url, headers={"Authorization": "Bearer ${env:DRILL_TEST_FLAGS_TOKEN}"}
        )
    )
    inp = fault_input(target, call())

    applied = await activity_env.run(apply_fault, inp)

    assert http_server.calls[0].headers["authorization"] == "Bearer s3cret-value"
    assert "s3cret-value" not in inp.model_dump_json() + applied.model_dump_json()  # history and SQL see the reference


async def test_a_missing_env_reference_fails_the_apply_naming_the_variable_not_a_value(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    http_server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "DRILL_TEST_*")
    monkeypatch.delenv("DRILL_TEST_UNSET_VAR", raising=False)
    target = Target(http=HttpTarget(base_url=http_server.base_url, headers={"X-Key": "${env:DRILL_TEST_UNSET_VAR}"}))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, call()))

    assert "environment variable DRILL_TEST_UNSET_VAR" in raised.value.message and "is not set" in raised.value.message
    assert http_server.calls == []
