"""The drill loader: good files load, every bad file is reported at the right line with a useful message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gameday.model.drill import DEFAULT_MAX_DURATION, Drill, ProbeKind, TargetKind
from gameday.model.errors import GamedayError
from gameday.model.loader import DrillFileError, Problem, load_drill_file, parse_drill

DRILLS = Path(__file__).parent.parent / "drills"
DRILL_FORMAT = Path(__file__).parents[2] / "docs" / "DRILL_FORMAT.md"
GOOD = sorted((DRILLS / "good").glob("*.yaml"))

# file → (line, path, fragment of the message): the one problem each bad file must produce.
BAD: dict[str, tuple[int, str, str]] = {
    "yaml_syntax.yaml": (4, "", "invalid YAML: expected ',' or '}'"),
    "top_level_list.yaml": (1, "", "at the top level, got a list"),
    "empty.yaml": (1, "", "the file is empty"),
    "bad_yaml_tag.yaml": (4, "", "invalid YAML value 'eighty' tagged !!int"),
    "wrong_type_samples.yaml": (5, "hypothesis[0].samples", "expected a whole number, got 'many'"),
    "unknown_key_top.yaml": (2, "tema", "unknown key 'tema' (did you mean 'team'?); expected one of: version, name"),
    "unknown_key_target.yaml": (6, "targets.api.process.restrat", "expected one of: pid, pidfile, restart"),
    "unknown_key_probe.yaml": (6, "hypothesis[0].http.status_code", "unknown key 'status_code'"),
    "unknown_key_fault.yaml": (5, "faults[0].latency", "expected one of: action, target, duration, name"),
    "traffic_bad_rate.yaml": (5, "observe.traffic.rate", "expected a rate like 50/s or 600/m, got 'fast'"),
    "duration_words.yaml": (3, "observe.duration", "expected a duration like 250ms, 30s, 2m or 1h30m, got '5 minutes'"),
    "duration_bare_number.yaml": (2, "max_duration", "a bare number has no unit"),
    "duration_negative.yaml": (7, "faults[0].duration", "got '-1s'"),
    "percent_over_100.yaml": (6, "hypothesis[0].tolerance.error_rate", "between 0% and 100%, got '150%'"),
    "bad_version.yaml": (1, "version", "expected 1, got the number 2"),
    "bad_probe_url.yaml": (4, "hypothesis[0].http.url", "expected an http:// or https:// URL"),
    "fault_not_a_mapping.yaml": (5, "faults[0]", "expected a mapping, got 'pause api'"),
    "unknown_action.yaml": (5, "faults[0]", "unknown action 'zap'; expected one of: pause, kill, run, call"),
    "unknown_target.yaml": (6, "faults[0].target", "unknown target 'dbb'; declared targets: api, db"),
    "action_wrong_kind.yaml": (6, "faults[0].action", "does not apply to command target 'shell'; expected one of: run"),
    "missing_name.yaml": (1, "name", "missing required key 'name'"),
    "probe_missing_port.yaml": (4, "hypothesis[0].tcp.port", "missing required key 'port'"),
    "probe_two_kinds.yaml": (5, "hypothesis[1]", "a probe needs exactly one kind key"),
    "target_no_kind.yaml": (3, "targets.api", "a target needs exactly one kind key"),
    "kill_without_restart.yaml": (4, "targets.api.process.restart", "a killed process needs a 'restart' command"),
    "duplicate_key.yaml": (5, "observe.duration", "duplicate key 'duration'; it is first written on line 3"),
    "duplicate_probe_name.yaml": (5, "hypothesis[1].name", "probe name 'api' is used twice"),
    "max_duration_too_short.yaml": (2, "max_duration", "must be longer than observe.duration"),
    "body_json_bad_path.yaml": (6, "hypothesis[0].http.body_json.path", "not a JMESPath expression: 'breaker.[state'"),
    "body_json_bad_regex.yaml": (8, "hypothesis[0].http.body_json.matches", "not a regular expression: '^2.(14'"),
}


def test_every_bad_file_has_an_expectation_and_every_expectation_a_file() -> None:
    assert {p.name for p in (DRILLS / "bad").glob("*.yaml")} == set(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_reported_once_at_its_line_and_field(name: str) -> None:
    line, path, fragment = BAD[name]
    file = DRILLS / "bad" / name

    with pytest.raises(DrillFileError) as caught:
        load_drill_file(file)

    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(file), line, path)
    assert fragment in problem.message
    assert problem.column is not None and problem.column >= 1
    assert str(caught.value) == str(problem)


@pytest.mark.parametrize("file", GOOD, ids=lambda p: p.name)
def test_good_file_loads(file: Path) -> None:
    assert isinstance(load_drill_file(file), Drill)


def test_good_files_cover_every_target_kind_probe_kind_and_fault_action() -> None:
    drills = [load_drill_file(file) for file in GOOD]

    assert {t.kind for d in drills for t in d.targets.values()} == set(TargetKind)
    assert {p.kind for d in drills for p in d.hypothesis} == set(ProbeKind)
    assert {f.action for d in drills for f in d.faults} == {
        "pause",
        "kill",
        "run",
        "call",
        "remove",
        "corrupt",
        "fill",
        "cpu",
        "memory",
        "disk_fill",
        "connections",
        "io",
        "method",
    }


def test_drill_without_max_duration_is_capped_at_15_minutes() -> None:
    drill = load_drill_file(DRILLS / "good" / "minimal.yaml")

    assert drill.max_duration == DEFAULT_MAX_DURATION == timedelta(minutes=15)


@pytest.mark.parametrize("file", GOOD, ids=lambda p: p.name)
def test_loaded_drill_survives_a_json_round_trip_unchanged(file: Path) -> None:
    drill = load_drill_file(file)

    assert Drill.model_validate(drill.model_dump(mode="json")) == drill


def test_units_are_read_from_their_drill_file_forms() -> None:
    drill = load_drill_file(DRILLS / "good" / "process_outage.yaml")

    assert drill.max_duration == timedelta(minutes=10)
    assert drill.hypothesis[1].tolerance.latency_p95 == timedelta(milliseconds=300)
    assert drill.hypothesis[1].tolerance.error_rate == pytest.approx(0.01)
    assert drill.faults[1].label == "kill api"


def test_all_problems_of_a_file_are_reported_at_once_in_file_order() -> None:
    text = "name: x\nobserve:\n  duration: soon\nfaults:\n  - {target: a, action: zap}\nteam: [a]\n"

    with pytest.raises(DrillFileError) as caught:
        parse_drill(text, "many.yaml")

    found = [(p.line, p.path) for p in caught.value.problems]
    assert found == [(3, "observe.duration"), (5, "faults[0]"), (6, "team")]
    assert str(caught.value).splitlines()[0].startswith("many.yaml:3:13: observe.duration: expected a duration")


def test_union_mismatch_is_one_problem_naming_every_accepted_form() -> None:
    text = "name: x\nhypothesis:\n  - name: a\n    http: {url: 'http://a', status: ok}\n"

    with pytest.raises(DrillFileError) as caught:
        parse_drill(text)

    [problem] = caught.value.problems
    assert problem.path == "hypothesis[0].http.status"
    assert problem.message == "expected a whole number or a list, got 'ok'"


def test_problem_reads_file_line_column_path_message() -> None:
    assert str(Problem("d.yaml", 3, 5, "faults[1].latency", "bad")) == "d.yaml:3:5: faults[1].latency: bad"
    assert str(Problem("d.yaml", None, None, "", "cannot read")) == "d.yaml: cannot read"


def test_drill_file_error_belongs_to_the_gameday_error_tree() -> None:
    assert issubclass(DrillFileError, GamedayError)


def test_missing_file_is_a_drill_file_error(tmp_path: Path) -> None:
    with pytest.raises(DrillFileError, match="cannot read"):
        load_drill_file(tmp_path / "absent.yaml")


def test_non_utf8_file_is_a_drill_file_error(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes("name: caf\xe9\n".encode("latin-1"))

    with pytest.raises(DrillFileError, match="not UTF-8"):
        load_drill_file(file)


def test_duration_too_large_for_timedelta_is_located() -> None:
    with pytest.raises(DrillFileError) as caught:
        parse_drill("name: x\nobserve:\n  duration: 99999999999999s\n")

    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (3, "observe.duration")
    assert "too large" in problem.message


# --- docs/DRILL_FORMAT.md says what the loader does ------------------------------------------------------


def _doc_blocks(section: str, fence: str) -> list[str]:
    text = DRILL_FORMAT.read_text(encoding="utf-8").split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in text.split(f"```{fence}\n")[1:]]


def test_complete_example_of_the_format_doc_loads() -> None:
    [example] = _doc_blocks("A complete example", "yaml")

    drill = parse_drill(example, "DRILL_FORMAT.md")

    # The chaostoolkit kinds come from an experiment file; their own section's example loads (test_ctk_loader.py).
    assert {t.kind for t in drill.targets.values()} == set(TargetKind) - {TargetKind("chaostoolkit")}
    assert {p.kind for p in drill.hypothesis} == set(ProbeKind) - {ProbeKind("chaostoolkit")}


def test_error_example_of_the_format_doc_is_what_the_loader_reports() -> None:
    [example] = _doc_blocks("How problems are reported", "yaml")
    console = _doc_blocks("How problems are reported", "console")[0]
    documented = [line for line in console.splitlines() if line.startswith("drills/")]

    with pytest.raises(DrillFileError) as caught:
        parse_drill(example, "drills/checkout.yaml")

    assert [str(p) for p in caught.value.problems] == documented


# --- whatever the text, the loader answers with DrillFileError or a Drill -------------------------------

_YAML_BITS = st.sampled_from(
    [":", ": ", "- ", "\n", "\n  ", "[", "]", "{", "}", ",", "'", '"', "#", "&a ", "*a", "<<: ", "!!int ", "? ",
     "|", ">", "\t", "---", "~", "name", "faults", "targets", "action", "pause", "5m", "-1s", "150%", "x"]
)  # fmt: skip
_KEYS = st.sampled_from(
    ["version", "name", "targets", "faults", "hypothesis", "observe", "recovery", "max_duration", "process",
     "command", "http", "tcp", "pid", "pidfile", "restart", "action", "target", "duration", "url", "port",
     "tolerance", "error_rate", "latency_p95", "samples", "status", "request", "revert", "run", "json", "pause",
     "kill", "call", "within", "interval"]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["5m", "250ms", "-1s", "1%", "150%", "99999999999999s", "http://x", "pause", "kill", "x"])
)
_STRUCTURES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=5),
    max_leaves=30,
)


def _parses_or_reports_problems(text: str) -> None:
    try:
        parse_drill(text, "fuzz.yaml")
    except DrillFileError as error:
        assert error.problems
        for problem in error.problems:
            assert "\n" not in str(problem)
            assert problem.line is None or problem.line >= 1


@settings(max_examples=300, deadline=None)
@given(st.text() | st.lists(_YAML_BITS, max_size=40).map("".join))
def test_any_text_gives_a_drill_or_a_drill_file_error(text: str) -> None:
    _parses_or_reports_problems(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _STRUCTURES, max_size=8) | _STRUCTURES)
def test_any_yaml_structure_gives_a_drill_or_a_drill_file_error(data: object) -> None:
    _parses_or_reports_problems(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# --- unknown keys: every one reported, with the key that was meant ----------------------------------------


def test_a_fault_missing_its_action_reports_its_unknown_key_too_with_the_key_that_was_meant() -> None:
    text = "name: x\ntargets:\n  api: {process: {pid: 1234}}\nfaults:\n  - {target: api, acton: pause}\n"

    with pytest.raises(DrillFileError) as caught:
        parse_drill(text, "typo.yaml")

    found = {p.path: p.message for p in caught.value.problems}
    assert found["faults[0]"].startswith("missing required key 'action'")
    assert found["faults[0].acton"].startswith("unknown key 'acton' (did you mean 'action'?); expected one of:")
    assert [p.line for p in caught.value.problems] == [5, 5]


def test_an_unknown_key_or_action_that_is_a_near_miss_says_which_was_meant() -> None:
    text = (
        "name: x\ntema: a\ntargets:\n  api: {process: {pid: 1234, pidfil: /run/a.pid}}\n"
        "faults:\n  - {target: api, action: pasue}\n"
    )

    with pytest.raises(DrillFileError) as caught:
        parse_drill(text, "typo.yaml")

    found = {p.path: p.message for p in caught.value.problems}
    assert found["tema"].startswith("unknown key 'tema' (did you mean 'team'?)")
    assert found["targets.api.process.pidfil"].startswith("unknown key 'pidfil' (did you mean 'pidfile'?)")
    assert found["faults[0]"].startswith("unknown action 'pasue' (did you mean 'pause'?)")


def test_an_unknown_key_far_from_every_known_one_suggests_nothing() -> None:
    with pytest.raises(DrillFileError) as caught:
        parse_drill("name: x\nzzzzqq: 1\n", "far.yaml")

    [problem] = caught.value.problems
    assert "did you mean" not in problem.message and problem.message.startswith("unknown key 'zzzzqq'; expected")


def test_unknown_keys_of_a_gameday_file_are_each_reported_once_with_the_key_that_was_meant(tmp_path: Path) -> None:
    from gameday.model.gameday_loader import load_gameday_file

    (tmp_path / "a.yaml").write_text("name: a\n")
    (tmp_path / "b.yaml").write_text("name: b\n")
    file = tmp_path / "gameday.yaml"
    file.write_text(
        "gameday: g\n"
        "stop_onn: []\n"
        "drills:\n"
        "  - {fiel: a.yaml}\n"
        "  - {parallel: [{file: a.yaml}, {file: b.yaml}], stop: x}\n"
        "  - {drill: {name: c, tema: y}}\n"
    )

    with pytest.raises(DrillFileError) as caught:
        load_gameday_file(file)

    found = [(p.line, p.path, p.message.split(";")[0]) for p in caught.value.problems]
    assert found == [
        (2, "stop_onn", "unknown key 'stop_onn' (did you mean 'stop_on'?)"),
        (4, "drills[0].fiel", "unknown key 'fiel' (did you mean 'file'?)"),
        (5, "drills[1].stop", "unknown key 'stop'"),
        (6, "drills[2].drill.tema", "unknown key 'tema' (did you mean 'team'?)"),
    ]


def test_a_gameday_step_is_judged_as_the_kind_its_keys_say_one_located_problem_each(tmp_path: Path) -> None:
    from gameday.model.gameday_loader import load_gameday_file

    (tmp_path / "a.yaml").write_text("name: a\n")
    file = tmp_path / "gameday.yaml"
    file.write_text(
        "gameday: g\n"
        "drills:\n"
        "  - {file: [a.yaml]}\n"
        "  - {drill: {name: c, observe: {duration: zz}}}\n"
        "  - {parallel: [{file: a.yaml}]}\n"
        "  - {parallel: 5}\n"
        "  - {parallel: [{file: a.yaml}, {fiel: a.yaml}], file: a.yaml}\n"
        "  - {}\n"
        "  - {file: a.yaml, drill: {name: d}}\n"
        "  - 7\n"
    )

    with pytest.raises(DrillFileError) as caught:
        load_gameday_file(file)

    found = [(p.file, p.line, p.path, p.message) for p in caught.value.problems]
    step = "a game-day step needs exactly one of 'file' or 'drill' (or 'parallel')"
    assert found == [
        (str(file), 3, "drills[0].file", "expected a string, got a list"),
        (
            str(file),
            4,
            "drills[1].drill.observe.duration",
            "expected a duration like 250ms, 30s, 2m or 1h30m, got 'zz'",
        ),
        (str(file), 5, "drills[2].parallel", "expected at least 2 item(s), got 1"),
        (str(file), 6, "drills[3].parallel", "expected a list, got the number 5"),
        (
            str(file),
            7,
            "drills[4].parallel[1].fiel",
            "unknown key 'fiel' (did you mean 'file'?); expected one of: file, drill",
        ),
        (str(file), 7, "drills[4].file", "unknown key 'file'; expected one of: parallel"),
        (str(file), 8, "drills[5]", step),
        (str(file), 9, "drills[6]", step),
        (str(file), 10, "drills[7]", "expected a mapping, got the number 7"),
    ]
