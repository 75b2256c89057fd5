"""Docker faults against a real engine: each action applied and reverted on a real container, checked through
HTTP where the container serves it and through the engine's own state."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import requests
from docker.models.containers import Container
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.model.drill import (
    DisconnectFault,
    DockerTarget,
    ExecFault,
    KillFault,
    LimitCpuFault,
    LimitMemoryFault,
    PauseFault,
    RestartFault,
    StopFault,
    Target,
)
from gameday.model.records import FaultInput, FaultRecord, FaultState
from tests.docker_support import Containers, http_status

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import FaultInputFactory

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def named(container: str) -> Target:
    return Target(docker=DockerTarget(container=container))


def labelled(labels: dict[str, str], **selection: object) -> Target:
    return Target(docker=DockerTarget(labels=labels, **selection))  # type: ignore[arg-type]


def then(inp: FaultInput, record: FaultRecord) -> FaultInput:
    """The revert's argument: the same fault, with the record apply returned."""
    return inp.model_copy(update={"record": record})


# --- each action, applied and reverted -------------------------------------------------------------------


async def test_pause_makes_http_time_out_and_unpause_serves_again(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    web = await containers.http(opt_in=False)  # named explicitly: no opt-in label needed
    inp = fault_input(named(web.name), PauseFault(action="pause", target="web"))

    record = await activity_env.run(apply_fault, inp)

    assert record.state == FaultState.APPLIED
    assert web.status() == "paused"
    assert await http_status(web.port, wait=0.5) is None
    assert record.changed["containers"] == web.id
    assert record.changed[f"{web.id[:12]}.status_before"] == "running"

    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert reverted.state == FaultState.REVERTED
    assert web.status() == "running"
    assert await http_status(web.port) == 200
    assert "unpaused" in reverted.output


async def test_stop_refuses_connections_and_start_serves_again(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    containers: Containers,
) -> None:
    web = await containers.http(init=True)  # an init forwards SIGTERM, so the stop is quick
    inp = fault_input(named(web.name), StopFault(action="stop", target="web", timeout=timedelta(seconds=2)))

    record = await activity_env.run(apply_fault, inp)

    assert web.status() == "exited"
    assert await http_status(web.port) is None

    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert web.status() == "running" and "started" in reverted.output
    await answers_again(web.port)
    again = await activity_env.run(revert_fault, then(inp, record))
    assert "nothing to start" in again.output  # idempotent


async def test_kill_sends_the_signal_and_the_revert_starts_the_container(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    containers: Containers,
) -> None:
    web = await containers.http()
    inp = fault_input(named(web.name), KillFault(action="kill", target="web", signal="SIGKILL"))

    record = await activity_env.run(apply_fault, inp)

    assert web.status() == "exited"
    assert web.attrs()["State"]["ExitCode"] == 137  # 128 + SIGKILL
    assert "SIGKILL" in record.output

    await activity_env.run(revert_fault, then(inp, record))

    assert web.status() == "running"
    await answers_again(web.port)


async def test_restart_restarts_and_the_revert_only_checks_it_runs(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    containers: Containers,
) -> None:
    web = await containers.http(init=True)
    started = web.attrs()["State"]["StartedAt"]
    inp = fault_input(named(web.name), RestartFault(action="restart", target="web", timeout=timedelta(seconds=2)))

    record = await activity_env.run(apply_fault, inp)

    assert web.attrs()["State"]["StartedAt"] != started
    await answers_again(web.port)
    reverted = await activity_env.run(revert_fault, then(inp, record))
    assert "nothing to start" in reverted.output


async def test_disconnect_removes_the_network_and_reconnect_restores_its_aliases(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    network = containers.network()
    box = containers.sleeper(network=network)
    # Give it an alias someone chose, so the revert has something exact to restore.
    net = containers.client.networks.get(network)
    net.disconnect(box)
    net.connect(box, aliases=["shop-db"])
    inp = fault_input(named(str(box.name)), DisconnectFault(action="disconnect", target="db", network=network))

    record = await activity_env.run(apply_fault, inp)

    box.reload()
    assert network not in box.attrs["NetworkSettings"]["Networks"]
    assert interfaces(box) == ["lo"]
    assert record.changed[f"{box.id[:12]}.aliases"] == "shop-db"

    await activity_env.run(revert_fault, then(inp, record))

    box.reload()
    assert "shop-db" in box.attrs["NetworkSettings"]["Networks"][network]["Aliases"]
    assert len(interfaces(box)) == 2  # lo and the network's interface again


async def test_limit_cpu_sets_a_quota_and_the_revert_lifts_it(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper()
    inp = fault_input(named(str(box.name)), LimitCpuFault(action="limit_cpu", target="box", cpus=0.5))

    record = await activity_env.run(apply_fault, inp)

    host = inspect(containers, box.id)["HostConfig"]
    assert (host["CpuQuota"], host["CpuPeriod"]) == (50_000, 100_000)
    assert record.changed[f"{box.id[:12]}.cpu_quota"] == "0"

    await activity_env.run(revert_fault, then(inp, record))

    assert inspect(containers, box.id)["HostConfig"]["CpuQuota"] <= 0  # no quota: -1 is the engine's "unlimited"


async def test_limit_cpu_on_a_cpus_limited_container_restores_the_exact_limit(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper(nano_cpus=1_500_000_000)
    inp = fault_input(named(str(box.name)), LimitCpuFault(action="limit_cpu", target="box", cpus=0.25))

    record = await activity_env.run(apply_fault, inp)
    assert inspect(containers, box.id)["HostConfig"]["NanoCpus"] == 250_000_000

    await activity_env.run(revert_fault, then(inp, record))
    assert inspect(containers, box.id)["HostConfig"]["NanoCpus"] == 1_500_000_000


async def test_limit_memory_is_restored_exactly_even_after_someone_restarts_the_container(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper(mem_limit="128m", init=True)
    before = inspect(containers, box.id)["HostConfig"]
    inp = fault_input(named(str(box.name)), LimitMemoryFault(action="limit_memory", target="box", memory=64 * MiB))

    record = await activity_env.run(apply_fault, inp)
    assert inspect(containers, box.id)["HostConfig"]["Memory"] == 64 * MiB
    box.restart(timeout=1)  # someone else, in between

    await activity_env.run(revert_fault, then(inp, record))

    after = inspect(containers, box.id)["HostConfig"]
    assert (after["Memory"], after["MemorySwap"]) == (before["Memory"], before["MemorySwap"])
    assert record.changed[f"{box.id[:12]}.memory"] == str(128 * MiB)


async def test_limit_memory_on_an_unlimited_container_reverts_to_the_hosts_memory_and_says_so(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper()
    inp = fault_input(named(str(box.name)), LimitMemoryFault(action="limit_memory", target="box", memory=32 * MiB))

    record = await activity_env.run(apply_fault, inp)
    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert inspect(containers, box.id)["HostConfig"]["Memory"] == containers.client.info()["MemTotal"]
    assert "cannot remove" in reverted.output


async def test_exec_runs_in_the_container_and_its_revert_undoes_it(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper()
    flag = "/tmp/gameday-flag"
    fault = ExecFault(action="exec", target="box", run=f"touch {flag} && echo made", revert=f"rm -f {flag}")
    inp = fault_input(named(str(box.name)), fault)

    record = await activity_env.run(apply_fault, inp)

    assert box.exec_run(["test", "-e", flag]).exit_code == 0
    assert "made" in record.output

    await activity_env.run(revert_fault, then(inp, record))
    assert box.exec_run(["test", "-e", flag]).exit_code == 1


async def test_a_failing_exec_is_a_non_retryable_apply_error_with_its_exit_code(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper()
    inp = fault_input(named(str(box.name)), ExecFault(action="exec", target="box", run="exit 3", revert="true"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    assert "exited with code 3" in str(raised.value)


# --- what the revert survives ----------------------------------------------------------------------------


async def test_a_vanished_container_is_reported_in_the_record_not_crashed_on(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper()
    inp = fault_input(named(str(box.name)), PauseFault(action="pause", target="box"))
    record = await activity_env.run(apply_fault, inp)
    box.remove(force=True)

    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert reverted.state == FaultState.REVERTED
    assert reverted.changed["vanished"] == box.id
    assert "vanished" in reverted.output


async def test_a_pause_undone_by_someone_else_reverts_as_a_no_op(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    box = containers.sleeper(init=True)
    inp = fault_input(named(str(box.name)), PauseFault(action="pause", target="box"))
    record = await activity_env.run(apply_fault, inp)
    box.unpause()
    box.restart(timeout=1)

    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert "nothing to unpause" in reverted.output
    assert inspect(containers, box.id)["State"]["Status"] == "running"


async def test_a_missing_named_container_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    inp = fault_input(named(f"gd-no-such-{uuid.uuid4().hex[:6]}"), PauseFault(action="pause", target="x"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and "no container named" in str(raised.value)


# --- selection by labels: opt-in and blast radius --------------------------------------------------------


async def test_labels_never_select_a_container_without_the_opt_in_label(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    app = uuid.uuid4().hex[:8]
    box = containers.sleeper(labels={"app": app}, opt_in=False)
    inp = fault_input(labelled({"app": app}), PauseFault(action="pause", target="fleet"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    assert "gameday.target=true" in str(raised.value) and str(box.name) in str(raised.value)
    assert inspect(containers, box.id)["State"]["Status"] == "running"


async def test_blast_radius_picks_count_containers_reproducibly_with_a_seed(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    app = uuid.uuid4().hex[:8]
    fleet = [containers.sleeper(labels={"app": app}) for _ in range(5)]
    outsider = containers.sleeper(labels={"app": app}, opt_in=False)
    target = labelled({"app": app}, count=2, seed=7)
    inp = fault_input(target, PauseFault(action="pause", target="fleet"))

    record = await activity_env.run(apply_fault, inp)

    picked = record.changed["containers"].split()
    assert len(picked) == 2
    assert {c.id for c in fleet if status(containers, c.id) == "paused"} == set(picked)
    assert status(containers, outsider.id) == "running"
    assert record.changed["seed"] == "7"
    assert "2 of 5 opted-in" in record.changed["selection"]

    await activity_env.run(revert_fault, then(inp, record))
    assert all(status(containers, c.id) == "running" for c in fleet)

    again = await activity_env.run(apply_fault, inp)  # same seed, same candidates: same pick
    await activity_env.run(revert_fault, then(inp, again))
    assert again.changed["containers"].split() == picked


async def test_blast_radius_by_percent_rounds_up_and_records_a_drawn_seed_that_replays_the_pick(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    app = uuid.uuid4().hex[:8]
    for _ in range(5):
        containers.sleeper(labels={"app": app})
    fault = PauseFault(action="pause", target="fleet")

    first = await activity_env.run(apply_fault, fault_input(labelled({"app": app}, percent=0.5), fault))
    await activity_env.run(revert_fault, then(fault_input(labelled({"app": app}, percent=0.5), fault), first))
    seed = int(first.changed["seed"])
    replay_inp = fault_input(labelled({"app": app}, percent=0.5, seed=seed), fault)
    replay = await activity_env.run(apply_fault, replay_inp)
    await activity_env.run(revert_fault, then(replay_inp, replay))

    assert len(first.changed["containers"].split()) == 3  # 50% of 5, rounded up
    assert replay.changed["containers"] == first.changed["containers"]


# --- helpers -----------------------------------------------------------------------------------------------


def inspect(containers: Containers, container_id: str) -> dict[str, Any]:
    return dict(containers.client.api.inspect_container(container_id))


def status(containers: Containers, container_id: str) -> str:
    return str(containers.client.api.inspect_container(container_id)["State"]["Status"])


def interfaces(box: object) -> list[str]:
    result = box.exec_run(["ls", "/sys/class/net"])  # type: ignore[attr-defined]
    return sorted(result.output.decode().split())


async def answers_again(port: int, within: float = 10.0) -> None:
    """Wait until the container answers 200 again (a started httpd needs a moment to listen)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (last := await http_status(port)) != 200:
        if loop.time() > deadline:
            raise AssertionError(f"port {port} never answered 200 again within {within:g}s; last: {last}")
        await asyncio.sleep(0.05)


async def test_a_cancelled_apply_leaves_nothing_behind_that_its_record_does_not_name(
    fault_input: FaultInputFactory, containers: Containers
) -> None:
    app = uuid.uuid4().hex[:8]
    fleet = [containers.sleeper(labels={"app": app}) for _ in range(3)]
    inp = fault_input(labelled({"app": app}), PauseFault(action="pause", target="fleet"))
    env = ActivityEnvironment()
    applying = asyncio.create_task(env.run(apply_fault, inp))
    await asyncio.sleep(0.03)  # mid-apply, most likely: pausing three containers takes longer
    env.cancel()

    try:
        record = await applying
    except asyncio.CancelledError:
        record = None  # the workflow never learns what was paused: so nothing may stay paused

    paused = {c.id for c in fleet if status(containers, c.id) == "paused"}
    assert paused == (set(record.changed["containers"].split()) if record else set())


async def test_a_pause_the_engine_did_but_whose_answer_was_lost_is_undone_with_the_failed_apply(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    containers: Containers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The engine pauses the second container, then its answer never arrives (a client-side read timeout on a loaded
    # machine): the apply fails, and must not leave that container paused while its record names none.
    app = uuid.uuid4().hex[:8]
    fleet = [containers.sleeper(labels={"app": app}) for _ in range(3)]
    real_pause = Container.pause
    calls: list[str] = []

    def pause_then_lose_the_answer(self: Container) -> None:
        real_pause(self)
        calls.append(self.id or "")
        if len(calls) == 2:
            raise requests.exceptions.ReadTimeout("read timed out (injected after the engine paused)")

    monkeypatch.setattr(Container, "pause", pause_then_lose_the_answer)
    inp = fault_input(labelled({"app": app}), PauseFault(action="pause", target="fleet"))

    with pytest.raises(ApplicationError, match="ReadTimeout"):
        await activity_env.run(apply_fault, inp)

    assert len(calls) == 2  # the engine really paused two containers before the apply gave up
    assert {c.id for c in fleet if status(containers, c.id) == "paused"} == set()


async def test_a_selection_matching_more_containers_than_the_limit_is_refused_and_changes_nothing(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, containers: Containers
) -> None:
    from gameday.model import budget

    app = uuid.uuid4().hex[:8]
    fleet = containers.sleepers(budget.MAX_CONTAINERS + 1, labels={"app": app})
    inp = fault_input(labelled({"app": app}, count=1), PauseFault(action="pause", target="fleet"))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    assert f"{budget.MAX_CONTAINERS + 1} opted-in running containers match app={app}" in str(raised.value)
    assert f"at most {budget.MAX_CONTAINERS}" in str(raised.value)
    assert all(status(containers, c.id) == "running" for c in fleet)

    fleet[0].stop(timeout=0)  # one fewer: at the limit, the selection is accepted and its record names 64
    record = await activity_env.run(apply_fault, inp)
    await activity_env.run(revert_fault, then(inp, record))
    assert len(record.changed["candidates"].split(", ")) == budget.MAX_CONTAINERS
    assert len(record.changed["containers"].split()) == 1
