"""The worker policy: read from the worker's own file (``GAMEDAY_POLICY``), enforced again by the activities that
act (apply, probe samples), whatever preflight did; and a pidfile that holds no pid is never echoed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities import policy
from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.activities.policy import PolicyError, WorkerPolicy, host_allowed
from gameday.activities.probes.activities import take_sample
from gameday.model.drill import CommandTarget, Drill, Fault, PauseFault, Probe, ProcessTarget, RunFault, Target
from gameday.model.records import FaultInput, FaultRecord, FaultState


def fault_input(target: Target, fault: Fault) -> FaultInput:
    record = FaultRecord(index=0, label=fault.label, target=fault.target, kind=target.kind.value, action=fault.action)
    return FaultInput(
        run_id="policy-test", index=0, target_name=fault.target, target=target, fault=fault, record=record
    )


def write_policy(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    monkeypatch.setenv("GAMEDAY_POLICY", str(path))
    return path


def test_without_a_policy_file_the_worker_says_it_runs_unrestricted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAMEDAY_POLICY", raising=False)
    current = policy.current()
    assert current.unrestricted
    assert current.describe().startswith("worker runs unrestricted: no GAMEDAY_POLICY is set")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("commands: no\nshell: true\n", "shell: unknown key 'shell'; expected one of: target_kinds"),
        ("comands: false\n", "comands: unknown key 'comands' (did you mean 'commands'?)"),
        ("actions: [pause, explode]\n", "unknown action(s) explode"),
        ("paths: [run/shop]\n", "paths must be absolute: run/shop"),
        ("hosts: [10.0.0.0/33]\n", "'10.0.0.0/33' is not a network"),
        ("- commands\n", "expected a mapping of rules"),
    ],
)
def test_an_unusable_policy_file_is_one_line_naming_the_file_and_refuses_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, said: str
) -> None:
    path = write_policy(tmp_path, text, monkeypatch)
    with pytest.raises(PolicyError) as raised:
        policy.load(str(path))
    assert str(path) in str(raised.value) and said in str(raised.value) and "\n" not in str(raised.value)

    refusals = policy.current().drill_refusals(Drill(name="any"))
    assert len(refusals) == 1 and said in refusals[0].message


def test_hosts_match_as_written_with_subdomain_and_network_rules() -> None:
    rules = ["127.0.0.1", "*.staging.example.com", "10.20.0.0/16", "::1", "api.internal"]
    for allowed in ("127.0.0.1", "shop.staging.example.com", "10.20.3.4", "[::1]", "API.internal"):
        assert host_allowed(allowed, rules), allowed
    for refused in ("localhost", "staging.example.com", "evil.com", "10.21.0.1", "api.internal.evil.com", ""):
        assert not host_allowed(refused, rules), refused


def test_a_pidfile_path_is_checked_after_resolving_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "run"
    allowed.mkdir()
    (allowed / "shop.pid").write_text("4242\n")
    (allowed / "escape.pid").symlink_to("/etc/passwd")
    write_policy(tmp_path, f"paths: [{allowed}]\n", monkeypatch)
    current = policy.current()

    ok = Target(process=ProcessTarget(pidfile=str(allowed / "shop.pid")))
    escape = Target(process=ProcessTarget(pidfile=str(allowed / "escape.pid")))
    dotdot = Target(process=ProcessTarget(pidfile=str(allowed / ".." / ".." / "etc" / "passwd")))
    assert current.target_refusals("api", ok) == []
    [refusal] = current.target_refusals("api", escape)
    assert refusal.field == "targets.api.process.pidfile"
    assert "resolves to /etc/passwd" in refusal.message and refusal.rule == f"paths: [{allowed}]"
    assert current.target_refusals("api", dotdot) != []


async def test_apply_enforces_the_policy_again_and_runs_nothing_and_its_revert_runs_nothing_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_policy(tmp_path, "commands: false\n", monkeypatch)
    applied, reverted = tmp_path / "applied", tmp_path / "reverted"
    target = Target(command=CommandTarget(cwd=str(tmp_path)))
    fault = RunFault(action="run", target="shell", run=f"touch {applied}", revert=f"touch {reverted}")
    inp = fault_input(target, fault)

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(apply_fault, inp)

    assert raised.value.type == "PolicyRefused" and raised.value.non_retryable
    assert "targets.shell.command: a command target runs shell commands (policy commands: false)" in str(
        raised.value.message
    )
    assert not applied.exists()
    # The workflow records the refused apply as FAILED with its message; the rollback's revert then has nothing to
    # undo, and must not run the drill's revert command either.
    failed = inp.record.model_copy(update={"state": FaultState.FAILED, "error": raised.value.message})
    record = await ActivityEnvironment().run(revert_fault, inp.model_copy(update={"record": failed}))
    assert record.state is FaultState.REVERTED and "never applied" in record.output
    assert not reverted.exists()


async def test_a_probe_the_policy_refuses_is_a_failed_sample_that_says_so_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_policy(tmp_path, "commands: false\nhosts: [10.0.0.0/8]\n", monkeypatch)
    ran = tmp_path / "ran"
    command = Probe.model_validate({"name": "queue", "command": {"run": f"touch {ran}"}})
    http = Probe.model_validate({"name": "api", "http": {"url": "http://127.0.0.1:9/health"}})

    async with httpx.AsyncClient() as client:
        by_command = await take_sample(command, client)
        by_http = await take_sample(http, client)

    assert not by_command.ok and by_command.problem is not None
    assert "probe 'queue'.command: a command probe runs a shell command (policy commands: false)" in by_command.problem
    assert not ran.exists()
    assert not by_http.ok and by_http.problem is not None
    assert "host '127.0.0.1' is not allowed (policy hosts: [10.0.0.0/8])" in by_http.problem


async def test_a_pidfile_that_does_not_hold_a_pid_is_reported_not_a_pid_and_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAMEDAY_POLICY", raising=False)
    secret_file = tmp_path / "shadow"
    secret_file.write_text("root:$6$Sup3rS3cretHash:19000:0:99999:7:::\n")
    target = Target(process=ProcessTarget(pidfile=str(secret_file)))
    inp = fault_input(target, PauseFault(action="pause", target="api"))

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(apply_fault, inp)

    assert f"pidfile {secret_file}: not a pid" in raised.value.message
    assert "Sup3rS3cret" not in raised.value.message and "root:" not in raised.value.message


def test_a_worker_policy_describes_itself_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_policy(tmp_path, "target_kinds: [http]\ncommands: false\nhosts: [127.0.0.1]\n", monkeypatch)
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "FLAGS_TOKEN")
    line = WorkerPolicy(rules=policy.load(str(path)).rules, source=str(path)).describe()
    assert line == (
        f"worker policy {path}: target kinds http; actions any; commands refused; paths any; hosts 127.0.0.1; "
        "drills may send GAMEDAY_DRILL_SECRETS: FLAGS_TOKEN"
    )


def test_the_locked_down_policy_of_the_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "DRILL_FORMAT.md").read_text(encoding="utf-8")
    section = doc.split("## Who may start drills: the worker policy\n", 1)[1].split("\n## ", 1)[0]
    [example] = [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]
    path = tmp_path / "policy.yaml"
    path.write_text(example)

    rules = policy.load(str(path)).rules

    assert rules.commands is False and rules.hosts is not None and rules.target_kinds is not None


def test_every_place_a_drill_names_a_command_or_a_host_is_refused_with_its_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_policy(tmp_path, "commands: false\nhosts: [10.0.0.0/8]\n", monkeypatch)
    drill = Drill.model_validate(
        {
            "name": "everything",
            "targets": {
                "api": {"process": {"pid": 4242, "restart": "systemctl start api"}},
                "db": {"docker": {"container": "shop-db"}},
                "link": {"proxy": {"listen": "127.0.0.1:15432", "upstream": "db.internal:5432"}},
            },
            "hypothesis": [
                {"name": "port", "tcp": {"host": "127.0.0.1", "port": 5432}},
                {"name": "errors", "prometheus": {"url": "http://127.0.0.1:9090", "query": "up", "max": 1}},
            ],
            "faults": [
                {"target": "api", "action": "kill"},
                {"target": "db", "action": "exec", "run": "true", "revert": "true"},
            ],
            "observe": {
                "guardrails": [{"name": "button", "stop_when": {"command": {"run": "cat /run/stop"}}}],
                "traffic": {
                    "rate": "5/s",
                    "endpoints": [{"url": "http://10.1.2.3/o/{{id}}", "method": "PUT"}, {"url": "http://evil.com/"}],
                    "read_back": {"url": "http://evil.com/o/{{id}}"},  # where the writes are read back, too
                },
            },
        }
    )

    fields = [refusal.field for refusal in policy.current().drill_refusals(drill)]

    assert fields == [
        "targets.api.process.restart",
        "targets.link.proxy.upstream",
        "faults[1].action",
        "hypothesis[0].tcp.host",
        "hypothesis[1].prometheus.url",
        "observe.guardrails[0].stop_when.command",
        "observe.traffic.endpoints[1].url",
        "observe.traffic.read_back.url",
    ]
