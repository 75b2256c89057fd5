"""``gameday validate`` refuses a drill one step past each limit of the payload budget, and any malformed file,
with one located line each and never a traceback (issue 11, items 1, 12 and 13).

``tests/workflows/test_payload_budget.py`` runs a drill at the limits; here each limit is crossed alone.
Run errors that come from Temporal itself are reported as what they are, not as an unreachable server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from gameday.cli.main import app
from gameday.model import budget

KIB = budget.KIB
BASE = """name: limits
targets:
  sh: {command: {}}
  api: {http: {base_url: "http://127.0.0.1:9"}}
hypothesis:
  - {name: up, tcp: {port: 9}}
faults:
  - {target: sh, action: run, run: "true", revert: "true"}
"""


def validate(tmp_path: Path, text: str, name: str = "drill.yaml") -> Result:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return CliRunner().invoke(app, ["validate", str(file)], env={"COLUMNS": "400"})


def refused(result: Result, fragment: str, where: str) -> None:
    """Exit 1, the expected message at ``file:line``, and no traceback."""
    output = result.output
    assert result.exit_code == 1, output
    assert fragment in output, output
    assert where in output, output
    assert "Traceback" not in output and isinstance(result.exception, SystemExit), output


def call_fault(request: str, revert: str = "{}") -> str:
    return f"  - {{target: api, action: call, request: {request}, revert: {revert}}}\n"


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def items(n: int, line: Callable[[int], str]) -> str:
    return "".join(line(i) for i in range(n))


N = budget.MAX_NAME_CHARS
OVER: dict[str, tuple[str, str, str]] = {
    # limit → (drill text one step past it, fragment of the message, where it points)
    "faults": (
        BASE + items(budget.MAX_FAULTS, lambda i: '  - {target: sh, action: run, run: "true", revert: "true"}\n'),
        f"{budget.MAX_FAULTS + 1} faults; a drill may have at most {budget.MAX_FAULTS}",
        ":7:1: faults:",
    ),
    "probes": (
        BASE.replace("hypothesis:\n", "hypothesis:\n" + items(budget.MAX_PROBES, lambda i: f"  - {{name: p{i}, tcp: {{port: 9}}}}\n")),  # noqa: E501
        f"{budget.MAX_PROBES + 1} hypothesis probes; a drill may have at most {budget.MAX_PROBES}",
        ":5:1: hypothesis:",
    ),
    "targets": (
        BASE.replace("targets:\n", "targets:\n" + items(budget.MAX_TARGETS - 1, lambda i: f"  t{i}: {{command: {{}}}}\n")),  # noqa: E501
        f"{budget.MAX_TARGETS + 1} targets; a drill may have at most {budget.MAX_TARGETS}",
        ":2:1: targets:",
    ),
    "guardrails": (
        BASE + "observe:\n  guardrails:\n" + items(budget.MAX_GUARDRAILS + 1, lambda i: f"    - {{name: g{i}, probe: up, failing: 3}}\n"),  # noqa: E501
        f"{budget.MAX_GUARDRAILS + 1} guardrails; a drill may have at most {budget.MAX_GUARDRAILS}",
        ":10:3: observe.guardrails:",
    ),
    "traffic endpoints": (
        BASE + "observe:\n  traffic:\n    rate: 1/s\n    endpoints:\n"
        + items(budget.MAX_ENDPOINTS + 1, lambda i: f"      - {{url: 'http://127.0.0.1:9/{i}'}}\n"),
        f"{budget.MAX_ENDPOINTS + 1} traffic endpoints",
        ":12:5: observe.traffic.endpoints:",
    ),
    "fault name": (
        BASE + f'  - {{name: {"f" * (N + 1)}, target: sh, action: run, run: "true", revert: "true"}}\n',
        f"a name of {N + 1} characters; at most {N}",
        ":9:12: faults[1].name:",
    ),
    "target name": (
        BASE.replace("targets:\n", f"targets:\n  {'t' * (N + 1)}: {{command: {{}}}}\n"),
        f"a name of {N + 1} characters; at most {N}",
        f":3:3: targets.{'t' * (N + 1)}:",
    ),
    "probe name": (
        BASE.replace("hypothesis:\n", f"hypothesis:\n  - {{name: {'p' * (N + 1)}, tcp: {{port: 9}}}}\n"),
        f"a name of {N + 1} characters; at most {N}",
        ":6:12: hypothesis[0].name:",
    ),
    "command": (
        BASE + f'  - {{target: sh, action: run, run: "{"x" * (budget.MAX_COMMAND_BYTES + 1)}", revert: "true"}}\n',
        f"this command is {budget.MAX_COMMAND_BYTES + 1:,} bytes; at most {budget.MAX_COMMAND_BYTES:,}",
        ":9:36: faults[1].run:",
    ),
    "text": (
        BASE + f'description: "{"d" * (budget.MAX_TEXT_BYTES + 1)}"\n',
        f"this text is {budget.MAX_TEXT_BYTES + 1:,} bytes; at most {budget.MAX_TEXT_BYTES:,}",
        ":9:14: description:",
    ),
    "headers": (
        BASE.replace('"http://127.0.0.1:9"', '"http://127.0.0.1:9", headers: '
                     + json.dumps({f"h{i}": "v" for i in range(budget.MAX_MAPPING_KEYS + 1)})),
        f"{budget.MAX_MAPPING_KEYS + 1} entries; at most {budget.MAX_MAPPING_KEYS}",
        ":4:48: targets.api.http.headers:",
    ),
    "json bytes": (
        BASE + call_fault("{json: " + json.dumps({k: "j" * 4000 for k in "abc"}) + "}"),
        "this JSON body is",
        ":9:43: faults[1].request.json:",
    ),
    "json depth": (
        BASE + call_fault("{json: {a: " + nested(budget.MAX_JSON_DEPTH) + "}}"),
        f"a JSON body nested {budget.MAX_JSON_DEPTH + 1} levels deep; at most {budget.MAX_JSON_DEPTH}",
        ":9:43: faults[1].request.json:",
    ),
    "file nesting": (
        BASE + call_fault("{json: {a: " + nested(budget.MAX_DEPTH) + "}}"),
        f"nested deeper than {budget.MAX_DEPTH} levels",
        ":9:",
    ),
    "file size": (
        BASE + "# " + "c" * (budget.MAX_FILE_BYTES - len(BASE) - 2) + "\n",
        f"the file is {budget.MAX_FILE_BYTES + 1:,} bytes; at most {budget.MAX_FILE_BYTES:,}",
        "drill.yaml: the file",
    ),
    "fault with its target": (
        BASE + call_fault(
            "{json: " + json.dumps({"a": "j" * 4000, "b": "j" * 4000}) + ", headers: "
            + json.dumps({f"h{i}": "v" * 4000 for i in range(5)}) + "}",
            "{json: " + json.dumps({"a": "j" * 4000, "b": "j" * 4000}) + "}",
        ),
        "this fault with its target is",
        ":9:5: faults[1]:",
    ),
    # Control characters are escaped in JSON (six bytes each): texts within their own limits can still make a
    # drill too big to carry, and the last check measures the drill as the workflow receives it.
    "whole drill": (
        BASE.replace("hypothesis:\n", "hypothesis:\n  - {name: c0, command: {run: 'true', stdout_contains: &c \""
                     + "\\x01" * budget.MAX_TEXT_BYTES + "\"}}\n"
                     + items(budget.MAX_PROBES - 2, lambda i: f"  - {{name: c{i + 1}, command: {{run: 'true', stdout_contains: *c}}}}\n"))  # noqa: E501
        + "description: *c\n",
        "the drill, as the workflow receives it, is",
        "drill.yaml:1:1: the drill",
    ),
}  # fmt: skip


@pytest.mark.parametrize("limit", sorted(OVER))
def test_validate_refuses_a_drill_one_step_past_each_limit_with_a_located_line(tmp_path: Path, limit: str) -> None:
    text, fragment, where = OVER[limit]

    refused(validate(tmp_path, text), fragment, where)


def test_the_drill_that_wedged_its_workflow_is_refused_before_it_runs(tmp_path: Path) -> None:
    """The report's case: 60 command faults with 16 KB commands, 1.9 MB, passed validate and then wedged."""
    big = "x" * 16_000
    faults = items(60, lambda i: f'  - {{target: sh, action: run, run: "echo {big}", revert: "echo {big}"}}\n')
    result = validate(tmp_path, BASE.replace("faults:\n", "faults:\n" + faults, 1))

    refused(result, f"bytes; at most {budget.MAX_FILE_BYTES:,}", "drill.yaml: the file is")


# --- item 12: malformed files, drill or game day: one located line, never a traceback ----------------------

MALFORMED: dict[str, tuple[str, str, str]] = {
    "int tag": ("name: x\nfaults: !!int abc\n", "invalid YAML value 'abc' tagged !!int", ":2:9:"),
    "timestamp tag": ("name: x\ndescription: !!timestamp x\n", "invalid YAML value 'x' tagged !!timestamp", ":2:14:"),
    "json 1000 deep": (BASE + call_fault("{json: {a: " + nested(1000) + "}}"), "nested deeper than", ":9:"),
    "game day int tag": ("gameday: g\ndrills: !!int abc\n", "invalid YAML value 'abc' tagged !!int", ":2:9:"),
    "game day timestamp tag": ("gameday: g\ndescription: !!timestamp x\n", "tagged !!timestamp", ":2:14:"),
    "game day 1000 deep": ("gameday: g\ndrills: " + nested(1000) + "\n", "nested deeper than", ":2:"),
    "game day inline drill over a limit": (
        "gameday: g\ndrills:\n  - drill:\n      name: x\n      faults: ["
        + ", ".join(["{target: a, action: pause}"] * (budget.MAX_FAULTS + 1)) + "]\n",
        f"{budget.MAX_FAULTS + 1} faults",
        ":5:7: drills[0].drill.faults:",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_validate_reports_a_malformed_file_in_one_located_line(tmp_path: Path, case: str) -> None:
    text, fragment, where = MALFORMED[case]

    refused(validate(tmp_path, text), fragment, where)


# --- item 13: alias bombs and self-referencing aliases ------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs inside a ``json:`` body, where any value is valid: ~1 KB written, 9**9 values expanded."""
    lines = ['      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"      l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return (
        BASE
        + "  - target: api\n    action: call\n    revert: {}\n    request:\n      json:\n"
        + "\n".join("  " + line for line in lines)
        + "\n"
    )


def test_validate_refuses_an_alias_bomb_at_the_anchor_that_explodes(tmp_path: Path) -> None:
    text = alias_bomb()
    assert len(text) < 2 * KIB

    refused(validate(tmp_path, text), "with its aliases (*name) expanded, is", "drill.yaml:1")
    assert "at most 524,288" in validate(tmp_path, text).output


def test_validate_refuses_a_value_that_contains_itself_through_an_alias(tmp_path: Path) -> None:
    text = BASE + call_fault("{json: &loop {a: *loop}}")

    refused(validate(tmp_path, text), "contains itself through an alias", ":9:")


def test_a_few_aliases_within_the_expanded_limit_are_fine(tmp_path: Path) -> None:
    text = BASE.replace('"true", revert: "true"', '&t "true", revert: *t')

    result = validate(tmp_path, text)
    assert result.exit_code == 0, result.output


# --- item 13: RPC errors from Temporal are not "cannot reach Temporal" --------------------------------------


@pytest.mark.integration
async def test_run_reports_a_request_temporal_refused_as_refused_not_as_unreachable(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    import asyncio

    file = tmp_path / "drill.yaml"
    file.write_text(BASE, encoding="utf-8")
    env = {
        "GAMEDAY_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "GAMEDAY_NAMESPACE": "no-such-namespace",
        "GAMEDAY_DATA_DIR": str(tmp_path),
        "COLUMNS": "400",
    }
    result = await asyncio.to_thread(CliRunner().invoke, app, ["run", str(file)], env=env)

    assert result.exit_code == 1, result.output
    assert "Temporal refused the request: NOT_FOUND" in result.output, result.output
    assert "no-such-namespace" in result.output
    assert "cannot reach" not in result.output and "Traceback" not in result.output
