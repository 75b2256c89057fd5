"""Chaos Toolkit experiments read, located and translated; tolerances judged as chaoslib judges them (issue 16).

Pure: no Temporal. chaoslib's own ``within_tolerance`` is the reference the judgements are compared with.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from chaoslib.hypothesis import within_tolerance as chaoslib_within_tolerance

from gameday.activities.ctk.jsonpath import JsonPathError, find
from gameday.activities.ctk.substitute import substitute
from gameday.activities.ctk.tolerance import within_tolerance
from gameday.model.errors import DrillFileError
from gameday.model.files import ExperimentFile, load_file

EXPERIMENTS = Path(__file__).parents[1] / "experiments"
PROCESS_OK = {"status": 0, "stdout": "ok 42\n", "stderr": ""}
HTTP_JSON = {
    "status": 200,
    "headers": {},
    "body": {"state": "ok", "items": [{"id": 1, "up": True}, {"id": 2, "up": False}]},
}

CASES: list[tuple[Any, Any]] = [
    (True, True),
    (True, False),
    (False, False),
    ("ok", "ok"),
    ("ok", "ko"),
    (0, PROCESS_OK),
    (1, PROCESS_OK),
    (200, HTTP_JSON),
    (3, 3),
    (3, 4),
    ([0, 1], PROCESS_OK),
    ([200, 204], HTTP_JSON),
    ([1, 5], 3),
    ([1, 5], 7),
    ([1, 2, 3], 2),
    ([1, 2, 3], 9),
    ({"type": "range", "range": [0, 10], "target": "status"}, PROCESS_OK),
    ({"type": "range", "range": [1, 10], "target": "status"}, PROCESS_OK),
    ({"type": "range", "range": [0.5, 1.5]}, 1.2),
    ({"type": "range", "range": [0, 1]}, "not a number"),
    ({"type": "regex", "pattern": "^ok \\d+", "target": "stdout"}, PROCESS_OK),
    ({"type": "regex", "pattern": "^ko", "target": "stdout"}, PROCESS_OK),
    ({"type": "jsonpath", "path": "$.state", "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.state", "expect": "ok", "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.state", "expect": "down", "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.items[*].id", "expect": [1, 2], "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.items[*].id", "count": 2, "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.missing", "target": "body"}, HTTP_JSON),
    ({"type": "jsonpath", "path": "$.a", "expect": 1}, '{"a": 1}'),
]


@pytest.mark.parametrize(("tolerance", "value"), CASES)
def test_tolerance_judged_as_chaoslib_judges_it(tolerance: Any, value: Any) -> None:
    assert within_tolerance(tolerance, value) == chaoslib_within_tolerance(tolerance, value=value)


def test_jsonpath_subset_and_its_limit_said() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2, "d": 3}]}}
    assert find("$..c", doc) == [1, 2]
    assert find("$.a.b[-1].d", doc) == [3]
    assert find("$.a.b[?(@.c > 1)].c", doc) == [2]
    assert find("$['a']['b'][0]", doc) == [{"c": 1}]
    with pytest.raises(JsonPathError, match="unsupported"):
        find("$.a.b[0:1]", doc)


def test_substitution_keeps_types_and_leaves_unknown_names() -> None:
    names = {"port": 8080, "host": "db"}
    assert substitute(["${port}", "${host}:${port}", "${nope}"], names) == [8080, "db:8080", "${nope}"]


def test_experiment_translates_into_one_method_fault_and_two_hypothesis_checks() -> None:
    loaded = load_file(EXPERIMENTS / "exp_basic.json")
    assert isinstance(loaded, ExperimentFile)
    drill = loaded.drill
    assert [p.name for p in drill.hypothesis] == ["steady-state-before", "steady-state-after"]
    assert [(f.action, f.label) for f in drill.faults] == [("method", "method")]
    assert loaded.notes == ("version: accepted, not acted on by gameday", "runtime: accepted, not acted on by gameday")


def test_bad_experiment_every_problem_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "title: bad\n"
        "description: bad\n"
        "secrets:\n"
        "  vault: {token: inline-value}\n"
        "method:\n"
        "  - {type: action, name: a, provider: {type: process}}\n"
        "rollbacks:\n"
        "  - {ref: nowhere}\n"
    )
    with pytest.raises(DrillFileError) as caught:
        load_file(bad)
    found = [(p.line, p.path) for p in caught.value.problems]
    assert found == [(4, "secrets.vault.token"), (6, "method[0].provider")]
    assert "inline-value" not in str(caught.value)


def test_unknown_ref_located_and_controls_noted_and_missing_rollback_warned(tmp_path: Path) -> None:
    ref = tmp_path / "ref.yaml"
    ref.write_text(
        "title: t\ndescription: d\nextensions: [{name: x}]\ncontrols: [{name: tracing}]\n"
        "method:\n  - {type: action, name: a, provider: {type: process, path: 'true'}}\n"
        "rollbacks:\n  - {ref: nowhere}\n"
    )
    with pytest.raises(DrillFileError, match="no method activity or hypothesis probe named 'nowhere'") as caught:
        load_file(ref)
    assert [p.line for p in caught.value.problems] == [8]
    ref.write_text(ref.read_text().replace("rollbacks:\n  - {ref: nowhere}\n", ""))
    loaded = load_file(ref)
    assert isinstance(loaded, ExperimentFile)
    assert loaded.notes == (
        "extensions: accepted, not acted on by gameday",
        "controls: 1 accepted, not run by gameday",
    )
    assert loaded.warnings == ("method action 'a' has no rollback: what it changes stays changed",)


def test_import_converts_what_maps_and_says_line_by_line_what_it_did_not(tmp_path: Path) -> None:
    from gameday.model.ctk_import import parse_and_import
    from gameday.model.loader import parse_drill

    source = (EXPERIMENTS / "exp_import.yaml").read_text()
    imported = parse_and_import(source, "exp_import.yaml")
    drill = parse_drill(imported.text, "drill.yaml")
    assert [p.name for p in drill.hypothesis] == ["health", "pid-alive"]
    assert [(f.label, f.action) for f in drill.faults] == [("flag-on", "call"), ("stall-db", "run")]
    assert drill.faults[1].revert == "docker unpause shop-db"  # paired with the process rollback
    assert [line.split(": ")[0] for line in imported.skipped] == [
        "exp_import.yaml:4:10",
        "exp_import.yaml:5:48",
        "exp_import.yaml:11:7",
        "exp_import.yaml:14:106",
        "exp_import.yaml:15:5",
        "exp_import.yaml:16:5",
    ]
    assert "method probe 'peek'" in imported.skipped[4]


async def test_worker_policy_without_commands_refuses_process_and_python_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gameday.activities.ctk import Resolution, run_activity
    from gameday.model.ctk_format import Activity

    policy = tmp_path / "policy.yaml"
    policy.write_text("commands: false\n")
    monkeypatch.setenv("GAMEDAY_POLICY", str(policy))
    for provider in (
        {"type": "process", "path": "touch", "arguments": [str(tmp_path / "ran")]},
        {"type": "python", "module": "tests.experiments.ctk_ext", "func": "set_flag", "arguments": {"path": "x"}},
    ):
        entry = await run_activity(
            Activity.model_validate({"type": "action", "name": "a", "provider": provider}), Resolution()
        )
        assert entry.status == "failed" and "refused by this worker's policy" in (entry.exception or "")
    assert not (tmp_path / "ran").exists()


def test_worker_policy_without_commands_refuses_an_experiment_with_process_providers_at_preflight(
    tmp_path: Path,
) -> None:
    from gameday.activities.policy import load

    policy = tmp_path / "policy.yaml"
    policy.write_text("commands: false\n")
    loaded = load_file(EXPERIMENTS / "exp_basic.json")
    refusals = [r.field for r in load(str(policy)).drill_refusals(loaded.drill)]
    assert refusals == ["faults[0].method", "hypothesis[0].chaostoolkit", "hypothesis[1].chaostoolkit"]


def test_the_chaostoolkit_section_of_the_drill_format_doc_loads() -> None:
    from gameday.model.loader import parse_drill

    text = (Path(__file__).parents[2] / "docs" / "DRILL_FORMAT.md").read_text(encoding="utf-8")
    section = text.split("## Chaos Toolkit experiments: the `chaostoolkit` target and probe\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    drill = parse_drill("name: doc-example\n" + example, "DRILL_FORMAT.md")
    assert [f.action for f in drill.faults] == ["method"]


def test_a_sidecar_names_the_experiment_and_adds_team_cap_and_slack(tmp_path: Path) -> None:
    from gameday.model.kinds.chaostoolkit import MethodFault

    loaded = load_file(EXPERIMENTS / "sidecar.yaml")
    assert isinstance(loaded, ExperimentFile)
    drill = loaded.drill
    assert (drill.team, drill.max_duration.total_seconds(), drill.name) == (
        "payments",
        600,
        "Flag-file-survives-a-touch",
    )
    assert drill.notify is not None and drill.notify.slack is not None and drill.notify.slack.channel == "#gameday"
    bad = tmp_path / "bad-sidecar.yaml"
    bad.write_text("experiment: nowhere.json\npager: x\nguardrails: {}\n")
    with pytest.raises(DrillFileError) as caught:
        load_file(bad)
    assert [(p.line, p.path) for p in caught.value.problems] == [(2, "pager"), (3, "guardrails")]
    # Its guardrails (stop_when form) are sampled by the method's runner and watched during the hypothesis after.
    fault = drill.faults[0]
    assert isinstance(fault, MethodFault) and [g.name for g in fault.guardrails] == ["kill-switch"]
    assert [g.name for g in drill.observe.guardrails] == ["kill-switch"]
    bad.write_text("experiment: exp_basic.json\nguardrails: [{name: g, probe: up, failing: 1}]\n")
    (tmp_path / "exp_basic.json").write_text((EXPERIMENTS / "exp_basic.json").read_text())
    with pytest.raises(DrillFileError, match="only the stop_when form watches"):
        load_file(bad)


def test_refs_resolve_as_chaoslib_resolves_them_hypothesis_probes_forward_and_the_last_of_a_name(
    tmp_path: Path,
) -> None:
    """chaoslib caches the method's activities and the hypothesis's probes by name before it runs (the last of a
    name wins), so a ref may name a hypothesis probe or a later method activity."""
    from gameday.model.kinds.chaostoolkit import MethodFault

    exp = tmp_path / "refs.yaml"
    exp.write_text(
        "title: t\ndescription: d\n"
        "steady-state-hypothesis:\n  title: h\n  probes:\n"
        "    - {type: probe, name: up, tolerance: 0, provider: {type: process, path: 'true'}}\n"
        "method:\n  - {ref: up}\n  - {ref: later}\n"
        "  - {type: action, name: later, provider: {type: process, path: 'true', arguments: [first]}}\n"
        "  - {type: action, name: later, provider: {type: process, path: 'true', arguments: [last]}}\n"
        "rollbacks:\n  - {ref: later}\n"
    )
    loaded = load_file(exp)
    fault = loaded.drill.faults[0]
    assert isinstance(fault, MethodFault)
    assert [(a.name, a.provider.arguments) for a in fault.method] == [
        ("up", None),
        ("later", ["last"]),
        ("later", ["first"]),
        ("later", ["last"]),
    ]
    assert [a.provider.arguments for a in fault.rollbacks] == [["last"]]
    assert "activity name 'later' is used 2 times: a ref runs the last one, as chaoslib does" in loaded.warnings


def test_a_process_printing_hundreds_of_megabytes_is_read_within_a_bound() -> None:
    """A worker is shared and long-lived: an activity's output is kept to a bound as it is read, not after."""
    import subprocess
    import sys

    script = """
import asyncio, resource
from gameday.activities.ctk import Resolution, run_activity
from gameday.model.ctk_format import Activity
spec = {"type": "probe", "name": "flood", "provider": {"type": "process", "path": "sh",
        "arguments": ["-c", "head -c 200000000 /dev/zero | tr '\\\\0' a"], "timeout": 60}}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
entry = asyncio.run(run_activity(Activity.model_validate(spec), Resolution()))
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(entry.status, grown // 1024)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    status, grown_mib = done.stdout.split()
    assert status == "succeeded"
    assert int(grown_mib) < 40, f"the worker grew by {grown_mib} MiB reading one activity's output"


async def test_python_functions_that_never_return_do_not_starve_the_workers_shared_threads() -> None:
    """A timed-out python function cannot be stopped; it must not hold one of the worker's shared threads (the
    fault ledger and the stores run there), or a few stuck extensions hang every drill on the worker."""
    import asyncio

    from gameday.activities.ctk import Resolution, run_activity
    from gameday.model.ctk_format import Activity
    from tests.experiments.ctk_ext import RELEASE

    stuck = Activity.model_validate(
        {
            "type": "action",
            "name": "stuck",
            "provider": {"type": "python", "module": "tests.experiments.ctk_ext", "func": "block", "timeout": 0.05},
        }
    )
    try:
        for _ in range(40):  # more than the default executor's threads (at most 32)
            entry = await run_activity(stuck, Resolution())
            assert entry.status == "failed" and "too long" in (entry.exception or "")
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), timeout=30) == "free"
    finally:
        RELEASE.set()


@pytest.mark.parametrize("timeout", ["NaN", "-1", "0", "1e15", "[1, NaN]", "[5]"])
def test_an_activity_timeout_that_is_not_a_finite_positive_number_is_located_not_a_crash(timeout: str) -> None:
    from gameday.model.ctk import parse_experiment

    text = (
        '{"title": "t", "description": "d", "method": [{"type": "action", "name": "a",\n'
        f'  "provider": {{"type": "http", "url": "http://127.0.0.1:9", "timeout": {timeout}}}}}]}}'
    )
    with pytest.raises(DrillFileError) as caught:
        parse_experiment(text, "x.json")
    assert [(p.line, p.path) for p in caught.value.problems] == [(2, "method[0].provider.timeout")]


def test_a_probe_tolerance_with_a_bad_provider_is_refused_at_validate_not_when_the_hypothesis_runs() -> None:
    from gameday.model.ctk import parse_experiment

    text = (
        "title: t\ndescription: d\nsteady-state-hypothesis:\n  title: h\n  probes:\n"
        "    - {type: probe, name: p, provider: {type: process, path: 'true'},\n"
        "       tolerance: {type: probe, name: q, provider: {type: process}}}\n"
        "method:\n  - {type: probe, name: m, provider: {type: process, path: 'true'}}\n"
    )
    with pytest.raises(DrillFileError, match=r"tolerance of 'p'.*needs path"):
        parse_experiment(text, "x.yaml")


async def test_worker_policy_hosts_refuse_an_http_provider_to_another_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hosts`` says where a drill's HTTP may go; an experiment's http providers obey it (the URL as substituted
    on the worker), and a written URL is refused at preflight already."""
    from gameday.activities.ctk import Resolution, run_activity
    from gameday.activities.policy import load
    from gameday.model.ctk import parse_experiment
    from gameday.model.ctk_format import Activity

    policy = tmp_path / "policy.yaml"
    policy.write_text("hosts: [10.99.99.99]\n")
    monkeypatch.setenv("GAMEDAY_POLICY", str(policy))
    call = {"type": "action", "name": "a", "provider": {"type": "http", "url": "${base}/flip", "timeout": 1}}
    entry = await run_activity(Activity.model_validate(call), Resolution(names={"base": "http://127.0.0.1:9"}))
    assert entry.status == "failed" and "refused by this worker's policy" in (entry.exception or "")
    text = (
        '{"title": "t", "description": "d", "method": [{"type": "action", "name": "a",\n'
        '  "provider": {"type": "http", "url": "http://127.0.0.1:9/flip"}}]}'
    )
    drill = parse_experiment(text, "x.json").drill
    assert [r.field for r in load(str(policy)).drill_refusals(drill)] == ["faults[0].method"]


def test_an_experiment_keeps_the_payload_budget_of_a_drill_refs_expanded() -> None:
    """A ref is a few bytes in the file and a whole activity in every payload that carries the method: the
    translated drill is held to the drill limits (``model/budget.py``), or Temporal could refuse it mid-run."""
    from gameday.model import budget
    from gameday.model.ctk import parse_experiment

    text = (
        "title: t\ndescription: d\n"
        "method:\n  - {type: action, name: a, provider: {type: process, path: 'true', arguments: [a-long-argument]}}\n"
        + "  - {ref: a}\n"
        * 2000
    )
    assert len(text) < budget.MAX_FILE_BYTES
    with pytest.raises(DrillFileError, match="the experiment's method with its rollbacks"):
        parse_experiment(text, "x.yaml")


def test_a_revert_skips_only_rollbacks_a_dead_attempt_heartbeated_never_a_finished_reverts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused drill's fault is reverted, applied again, and its record keeps that revert's output: the next
    revert must run every rollback again, and skip only what a dead attempt reported as done."""
    import json

    from gameday.activities.faults import chaostoolkit
    from gameday.model.ctk import parse_experiment
    from gameday.model.records import FaultInput, FaultRecord

    monkeypatch.setenv("CTK_TEST_WORKDIR", str(tmp_path))
    path = EXPERIMENTS / "exp_crash_rollbacks.json"
    drill = parse_experiment(path.read_text(), str(path)).drill
    (tmp_path / "settling").touch()  # settle returns at once
    fault = drill.faults[0]

    def reverted(output: str) -> list[str]:
        record = FaultRecord(index=0, label="method", target="experiment", kind="chaostoolkit", action="method")
        inp = FaultInput(
            run_id="r",
            index=0,
            target_name="experiment",
            target=drill.targets["experiment"],
            fault=fault,
            record=record.model_copy(update={"output": output}),
        )
        (tmp_path / "rollbacks.log").unlink(missing_ok=True)
        done = asyncio.run(chaostoolkit.revert(inp))
        assert [r["name"] for r in json.loads(done.output or "")["rollbacks"]] == ["remove-fault", "settle"]
        return (tmp_path / "rollbacks.log").read_text().split()

    finished = chaostoolkit.entries_json("rollbacks", [chaostoolkit._unrun(fault.rollbacks[0], "x")])
    assert reverted(finished) == ["remove", "settle"]
    partial = chaostoolkit.entries_json(chaostoolkit.RESUME_KEY, [chaostoolkit._unrun(fault.rollbacks[0], "x")])
    assert reverted(partial) == ["settle"]
