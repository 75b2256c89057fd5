"""`gameday validate` and `gameday import` on Chaos Toolkit experiments, as a person runs them (issue 16)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gameday.cli.main import app

EXPERIMENTS = Path(__file__).parents[1] / "experiments"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    return result.exit_code, result.output


def test_validate_an_experiment_lists_what_is_not_acted_on_and_exits_0() -> None:
    code, out = invoke("validate", str(EXPERIMENTS / "exp_basic.json"))
    assert code == 0, out
    assert "Chaos Toolkit experiment, run as drill Flag-file-survives-a-touch" in out
    assert "note: runtime: accepted, not acted on by gameday" in out


def test_validate_a_bad_experiment_locates_each_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{\n  "title": "t",\n  "description": "d",\n  "method": [\n    {"type": "action", "name": "a"}\n  ]\n}\n'
    )
    code, out = invoke("validate", str(bad))
    assert code == 1
    assert f"{bad}:5:5: method[0].provider: missing required key 'provider'" in " ".join(out.split())


def test_wrapper_flags_are_refused_for_a_drill_file(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text("name: d\nhypothesis:\n  - {name: up, tcp: {port: 9}}\n")
    code, out = invoke("run", str(drill), "--team", "payments", "--dry-run")
    assert code == 1 and "wrap a Chaos Toolkit experiment" in out


def test_run_dry_run_of_an_experiment_with_wrapper_flags_shows_the_plan() -> None:
    code, out = invoke("run", str(EXPERIMENTS / "exp_deviates.yaml"), "--max-duration", "2m", "--dry-run")
    assert code == 0, out
    assert "max_duration 2m" in out and "revert: run the rollbacks: 'repair-health'" in out


def test_import_writes_a_drill_and_says_what_it_did_not_convert(tmp_path: Path) -> None:
    out_file = tmp_path / "drill.yaml"
    code, out = invoke("import", str(EXPERIMENTS / "exp_import.yaml"), "-o", str(out_file))
    assert code == 0, out
    assert "6 part(s) not converted" in out
    assert "not converted:" in out and "method probe 'peek'" in out
    code, out = invoke("validate", str(out_file))
    assert code == 0, out


def test_guardrail_flag_wraps_an_experiment_and_a_bad_form_is_a_usage_error() -> None:
    code, out = invoke("run", str(EXPERIMENTS / "exp_deviates.yaml"), "--guardrail", "command:test -e /x", "--dry-run")
    assert code == 0, out
    code, out = invoke("run", str(EXPERIMENTS / "exp_deviates.yaml"), "--guardrail", "error_rate > 5%", "--dry-run")
    assert code == 1 and "write command:CMD" in out
