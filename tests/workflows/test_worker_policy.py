"""The worker policy on the real dev server: a drill that asks for what the worker's policy refuses ends in
preflight, ``ERROR``, with the rule and the drill field named and nothing injected; and a worker says at start
what it accepts (once, plainly, when it runs unrestricted)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Phase, StepStatus, Verdict
from tests.harness import HttpService, finish, running_worker, start_drill, wait_until, worker_process

pytestmark = pytest.mark.integration


def shell_fault(marker: Path) -> str:
    """A command fault that leaves ``marker`` behind if it is ever applied (its revert is a no-op)."""
    return f'  - {{target: shell, action: run, run: "touch {marker}", revert: "true", name: mark}}\n'


CASES = {
    "target kind": (
        "target_kinds: [command]\n",
        '  flags: {{http: {{base_url: "{url}"}}}}\n',
        "  - {{target: flags, action: call, request: {{path: /}}, revert: {{path: /}}}}\n",
        "",
        "targets.flags: http targets are not accepted (policy target_kinds: [command])",
    ),
    "action": (
        "actions: [run]\n",
        '  api: {{process: {{pidfile: "{pidfile}"}}}}\n',
        "  - {{target: api, action: pause}}\n",
        "",
        "faults[1].action: action 'pause' is not accepted (policy actions: [run])",
    ),
    "commands": (
        "commands: false\n",
        "",
        "",
        "",
        "targets.shell.command: a command target runs shell commands (policy commands: false)",
    ),
    "command probe": (
        "commands: false\n",
        "",
        "",
        '  - {{name: queue, command: {{run: "true"}}}}\n',
        "hypothesis[0].command: a command probe runs a shell command (policy commands: false)",
    ),
    "pidfile path": (
        "paths: [{tmp}]\n",
        "  api: {{process: {{pidfile: /etc/passwd}}}}\n",
        "  - {{target: api, action: pause}}\n",
        "",
        "targets.api.process.pidfile: pidfile /etc/passwd is not under an allowed path (policy paths: [{tmp}])",
    ),
    "cwd path": (
        "paths: [{tmp}/allowed]\n",
        "",
        "",
        "",
        "targets.shell.command.cwd: cwd {tmp} is not under an allowed path (policy paths: [{tmp}/allowed])",
    ),
    "probe host": (
        "hosts: [10.0.0.0/8]\n",
        "",
        "",
        '  - {{name: api, http: {{url: "{url}"}}}}\n',
        "hypothesis[0].http.url: host '127.0.0.1' is not allowed (policy hosts: [10.0.0.0/8])",
    ),
    "http target host": (
        "hosts: [api.staging.example.com]\n",
        '  flags: {{http: {{base_url: "{url}"}}}}\n',
        "",
        "",
        "targets.flags.http.base_url: host '127.0.0.1' is not allowed (policy hosts: [api.staging.example.com])",
    ),
    "secret": (
        "",
        "",
        "",
        '  - {{name: api, http: {{url: "{url}", headers: {{X-Token: "${{env:GAMEDAY_SLACK_TOKEN}}"}}}}}}\n',
        "hypothesis[0].http.headers.X-Token: environment variable GAMEDAY_SLACK_TOKEN is one of gameday's own",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_drill_the_worker_policy_refuses_ends_in_preflight_with_the_rule_and_field_and_nothing_injected(
    client: Client, store: Store, service: HttpService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    policy_text, targets, faults, hypothesis, expected = (
        part.format(tmp=tmp_path, url=service.url.rstrip("/"), pidfile=service.pidfile) for part in CASES[case]
    )
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy_text)
    monkeypatch.setenv("GAMEDAY_POLICY", str(policy_file))
    monkeypatch.setenv("GAMEDAY_SLACK_TOKEN", "xoxb-never-sent")
    marker = tmp_path / "injected"
    drill = (
        f"name: refused-{case.replace(' ', '-')}\n"
        "targets:\n"
        f'  shell: {{command: {{cwd: "{tmp_path}"}}}}\n'
        f"{targets}"
        + (f"hypothesis:\n{hypothesis}" if hypothesis else "")
        + f"faults:\n{shell_fault(marker)}{faults}"
        + "observe: {duration: 1s, interval: 200ms}\n"
    )

    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), f"policy_{case}")

    assert record.verdict == Verdict.ERROR, record.summary
    assert expected in record.summary, record.summary
    assert f"refused by this worker's policy (GAMEDAY_POLICY={policy_file})" in record.error
    assert not marker.exists() and record.faults == []
    assert (record.steps[0].phase, record.steps[0].status) == (Phase.PREFLIGHT, StepStatus.FAILED)
    assert Phase.INJECT not in [s.phase for s in record.steps]
    assert "xoxb-never-sent" not in record.model_dump_json()


async def test_traffic_to_a_host_the_policy_refuses_is_refused_in_preflight(
    client: Client, store: Store, service: HttpService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("hosts: [10.0.0.0/8]\n")
    monkeypatch.setenv("GAMEDAY_POLICY", str(policy_file))
    marker = tmp_path / "injected"
    drill = (
        "name: refused-traffic\n"
        f'targets: {{shell: {{command: {{cwd: "{tmp_path}"}}}}}}\n'
        f"faults:\n{shell_fault(marker)}"
        f"observe: {{duration: 1s, traffic: {{url: '{service.url}', rate: 5/s}}}}\n"
    )

    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "policy_traffic")

    assert record.verdict == Verdict.ERROR, record.summary
    assert "observe.traffic.url: host '127.0.0.1' is not allowed (policy hosts: [10.0.0.0/8])" in record.summary
    assert not marker.exists() and record.faults == [] and record.traffic is None


def _start_worker(client: Client, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    address = client.service_client.config.target_host
    database = f"sqlite:///{tmp_path / 'results.db'}"
    return worker_process(address, f"policy-{uuid.uuid4()}", database, log), log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=15)


async def test_a_worker_without_a_policy_says_once_at_start_that_it_runs_unrestricted(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAMEDAY_POLICY", raising=False)
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "FLAGS_TOKEN,DRILL_*")
    proc, log = _start_worker(client, tmp_path, "unrestricted")
    try:
        wait_until(lambda: "worker polling task queue" in log.read_text(), what="the worker to start", timeout=60)
        wait_until(lambda: "unrestricted" in log.read_text(), what="the policy line", timeout=10)
    finally:
        _stop(proc)

    [line] = [line for line in log.read_text().splitlines() if "unrestricted" in line]
    assert "WARNING gameday.worker: worker runs unrestricted: no GAMEDAY_POLICY is set" in line
    assert "drills may send GAMEDAY_DRILL_SECRETS: FLAGS_TOKEN, DRILL_*" in line


async def test_a_worker_names_its_policy_at_start_and_refuses_to_start_with_an_unusable_one(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("commands: false\nhosts: [127.0.0.1]\n")
    bad.write_text("commands: false\nhost: [127.0.0.1]\n")

    monkeypatch.setenv("GAMEDAY_POLICY", str(bad))
    refused, refused_log = _start_worker(client, tmp_path, "bad")
    assert refused.wait(timeout=60) == 1
    said = f"policy file {bad} (GAMEDAY_POLICY): host: unknown key 'host' (did you mean 'hosts'?)"
    assert said in refused_log.read_text()
    assert "Traceback" not in refused_log.read_text()

    monkeypatch.setenv("GAMEDAY_POLICY", str(good))
    proc, log = _start_worker(client, tmp_path, "good")
    try:
        wait_until(lambda: f"worker policy {good}:" in log.read_text(), what="the policy line", timeout=60)
    finally:
        _stop(proc)
    text = log.read_text()
    assert "commands refused" in text and "hosts 127.0.0.1" in text and "unrestricted" not in text
