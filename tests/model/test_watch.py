"""``observe.watch`` and ``observe.expect``'s ``sequence``, ``detect``, ``alerts`` (issue 15): the drill file's
located errors, and the judgements as pure functions (collapsing, subsequence, within, silent failure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gameday.model.loader import DrillFileError, parse_drill
from gameday.model.watch import (
    CHANGES_BUDGET,
    MAX_CHANGES,
    MAX_WATCH,
    AlertsExpect,
    DetectExpect,
    SequenceExpect,
    WatchProgress,
    is_subsequence,
    judge_alerts,
    judge_detect,
    judge_sequence,
    seen_values,
    value_text,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8000/health"

DRILL = f"""
name: watched
targets: {{sh: {{command: {{}}}}}}
faults: [{{target: sh, action: run, run: "true", revert: "true"}}]
observe:
  interval: 500ms
  watch:
    - name: breaker
      http: {{url: "{URL}", record: breaker.state}}
    - name: says-degraded
      http: {{url: "{URL}", body_json: {{path: degraded, equals: true}}}}
  expect:
{{expect}}
"""


def test_record_written_beside_http_as_in_the_issue_means_the_same_as_inside_it() -> None:
    # Issue 15's form, verbatim ("this exact form is what users will write"): `record:` a key of the probe itself.
    beside = DRILL.replace(
        f'http: {{url: "{URL}", record: breaker.state}}', f'http: {{url: "{URL}"}}\n      record: breaker.state'
    )
    assert "\n      record: breaker.state" in beside
    drill = parse_drill(beside.replace("{expect}", "    sequence: {probe: breaker, values: [CLOSED, OPEN]}\n"))
    assert drill.observe.watch[0].http is not None and drill.observe.watch[0].http.record == "breaker.state"
    with pytest.raises(DrillFileError, match="record"):  # both places, or on a probe that is not http: refused
        parse_drill(
            beside.replace('http: {url: "' + URL + '"}', f'http: {{url: "{URL}", record: x}}').replace(
                "{expect}", "    detect: {probe: says-degraded, within: 30s}\n"
            )
        )


def _problems(expect: str) -> list[tuple[str, str]]:
    with pytest.raises(DrillFileError) as caught:
        parse_drill(DRILL.replace("{expect}", expect), "w.yaml")
    return [(p.path, p.message) for p in caught.value.problems]


def test_the_issue_form_loads_without_traffic() -> None:
    drill = parse_drill(
        DRILL.replace(
            "{expect}",
            "    sequence: {probe: breaker, values: [CLOSED, OPEN, HALF_OPEN, CLOSED], within: 60s}\n"
            "    detect: {probe: says-degraded, within: 30s}\n"
            '    alerts: {from: {alertmanager: "http://127.0.0.1:9093"}, fire: [CheckoutDBDown], within: 60s,'
            " resolve_within: 2m}\n",
        )
    )
    expect = drill.observe.expect
    assert expect is not None and expect.sequence is not None and expect.alerts is not None
    assert expect.sequence.texts == ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"]
    assert expect.alerts.from_.url == "http://127.0.0.1:9093"
    assert drill.observe.watch[0].http is not None and drill.observe.watch[0].http.record == "breaker.state"


def test_record_beside_http_as_the_issue_writes_it_is_the_http_probes_record() -> None:
    beside = DRILL.replace(
        f'http: {{url: "{URL}", record: breaker.state}}', f'http: {{url: "{URL}"}}\n      record: breaker.state'
    ).replace("{expect}", "    sequence: {probe: breaker, values: [CLOSED, OPEN]}\n")
    under = DRILL.replace("{expect}", "    sequence: {probe: breaker, values: [CLOSED, OPEN]}\n")
    assert beside != under
    assert parse_drill(beside).observe.watch == parse_drill(under).observe.watch  # stored and sent one way
    twice = beside.replace(f'http: {{url: "{URL}"}}', f'http: {{url: "{URL}", record: level}}')
    not_http = beside.replace(f'http: {{url: "{URL}"}}', "tcp: {host: 127.0.0.1, port: 8000}")
    for text, words in ((twice, "record given twice"), (not_http, "is for an http probe")):
        with pytest.raises(DrillFileError) as caught:
            parse_drill(text)
        assert [(p.path, words in p.message) for p in caught.value.problems] == [("observe.watch[0]", True)]


def test_unknown_probe_names_are_located_and_list_the_watch_probes() -> None:
    found = _problems("    sequence: {probe: nope, values: [A]}\n    detect: {probe: gone, within: 3s}\n")
    assert found == [
        ("observe.expect.sequence.probe", "unknown probe 'nope'; watch probes: breaker, says-degraded"),
        ("observe.expect.detect.probe", "unknown probe 'gone'; watch probes: breaker, says-degraded"),
    ]


def test_watch_probe_names_are_unique_and_take_no_site() -> None:
    text = DRILL.replace("{expect}", "    detect: {probe: breaker, within: 3s}\n").replace(
        "    - name: says-degraded\n", "    - name: breaker\n      from: db-host\n"
    )
    with pytest.raises(DrillFileError) as caught:
        parse_drill(text)
    found = [(p.path, p.message) for p in caught.value.problems]
    assert ("observe.watch[1].name", "watch probe name 'breaker' is used twice") in found
    assert any(path == "observe.watch[1].from" for path, _ in found)


def test_a_sequence_needs_a_probe_that_records() -> None:
    [(path, message)] = _problems("    sequence: {probe: says-degraded, values: [A, B]}\n")
    assert path == "observe.expect.sequence.probe"
    assert "records no value" in message and "record: PATH" in message


def test_service_levels_still_need_traffic_but_the_watch_does_not() -> None:
    [(path, message)] = _problems('    availability: ">= 90%"\n    detect: {probe: says-degraded, within: 3s}\n')
    assert path == "observe.expect" and "availability" in message and "observe.traffic" in message


def test_bad_record_path_and_alert_source_are_located() -> None:
    text = DRILL.replace("record: breaker.state", "record: 'breaker.['").replace(
        "{expect}", "    alerts: {from: {}, fire: [A]}\n"
    )
    with pytest.raises(DrillFileError) as caught:
        parse_drill(text)
    paths = [p.path for p in caught.value.problems]
    assert "observe.watch[0].http.record" in paths
    assert any(p.startswith("observe.expect.alerts.from") for p in paths)


def _progress(name: str, states: list[tuple[float, str | None, bool]]) -> WatchProgress:
    progress = WatchProgress()
    watched = progress.probe(name, "breaker.state")
    for seconds, value, held in states:
        watched.note(T0 + timedelta(seconds=seconds), value, held, None)
    return progress


def test_values_are_collapsed_and_start_with_the_one_in_effect_at_the_fault() -> None:
    progress = _progress(
        "b", [(-1, "CLOSED", True), (-0.5, "CLOSED", True), (1, "OPEN", True), (1.5, "OPEN", True), (3, "CLOSED", True)]
    )
    watched = progress.probes[0]
    assert watched.values == ["CLOSED", "OPEN", "CLOSED"] and len(watched.changes) == 3 and watched.samples == 5
    assert seen_values(watched, T0, None) == ["CLOSED", "OPEN", "CLOSED"]
    assert seen_values(watched, T0, T0 + timedelta(seconds=2)) == ["CLOSED", "OPEN"]


def test_subsequence_allows_values_between_but_keeps_order() -> None:
    assert is_subsequence(["CLOSED", "OPEN", "CLOSED"], ["CLOSED", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"])
    assert not is_subsequence(["OPEN", "CLOSED", "OPEN"], ["CLOSED", "OPEN", "CLOSED"])
    assert not is_subsequence(["A", "A"], ["A"])


def test_sequence_holds_within_and_misses_after_it() -> None:
    progress = _progress("b", [(-1, "CLOSED", True), (2, "OPEN", True), (5, "HALF_OPEN", True), (8, "CLOSED", True)])
    wanted = ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"]
    held = judge_sequence(SequenceExpect(probe="b", values=wanted, within=timedelta(seconds=10)), progress, T0)
    assert held.held is True and held.actual == "CLOSED → OPEN → HALF_OPEN → CLOSED"
    late = judge_sequence(SequenceExpect(probe="b", values=wanted, within=timedelta(seconds=6)), progress, T0)
    assert late.held is False and late.actual == "CLOSED → OPEN → HALF_OPEN"
    assert "expected CLOSED → OPEN → HALF_OPEN → CLOSED within 6s" in late.miss


def test_values_are_compared_as_json_text() -> None:
    assert value_text(True) == "true" and value_text(2) == "2" and value_text("OPEN") == "OPEN"
    assert SequenceExpect(probe="b", values=[1, True, "x"]).texts == ["1", "true", "x"]
    assert len(value_text("x" * 1000)) == 200


def test_detect_counts_from_the_first_fault_to_the_first_held_sample() -> None:
    progress = _progress("d", [(-1, None, False), (0.5, None, False), (2.25, None, True), (4, None, False)])
    line, seconds = judge_detect(DetectExpect(probe="d", within=timedelta(seconds=3)), progress, T0, T0)
    assert line.held is True and seconds == pytest.approx(2.25) and line.actual == "detected after 2.25s"
    slow, _ = judge_detect(DetectExpect(probe="d", within=timedelta(seconds=2)), progress, T0, T0)
    assert slow.held is False and slow.miss.startswith("slow detection")


def test_a_detector_that_never_fires_is_a_silent_failure() -> None:
    progress = _progress("quiet", [(-1, None, False), (1, None, False)])
    ended = T0 + timedelta(seconds=42)
    line, seconds = judge_detect(DetectExpect(probe="quiet", within=timedelta(seconds=30)), progress, T0, ended)
    assert seconds is None and line.held is False
    assert line.miss == "silent failure: 'quiet' never detected the fault (watched 42s)"
    assert line.actual.startswith("undetected")


def test_changes_are_bounded_whatever_the_flapping() -> None:
    progress = WatchProgress()
    watched = progress.probe("flap", "s")
    for i in range(10 * MAX_CHANGES):
        watched.note(T0 + timedelta(seconds=i), str(i % 2), True, None)
    assert len(watched.changes) == MAX_CHANGES and watched.dropped == 9 * MAX_CHANGES and watched.samples == 1000
    assert len(progress.model_dump_json()) < 20_000


def test_the_watch_stays_bounded_with_the_most_probes_and_the_longest_values() -> None:
    progress = WatchProgress()
    keep = progress.keep(MAX_WATCH)
    for n in range(MAX_WATCH):
        watched = progress.probe(f"probe-{n}", "a.b")
        for i in range(1000):
            watched.note(T0 + timedelta(seconds=i), value_text(f"{i % 2}" * 5000), bool(i % 3), "x" * 5000, keep)
    assert sum(len(p.changes) for p in progress.probes) == CHANGES_BUDGET
    assert len(progress.model_dump_json()) < 256 * 1024


def _alerts(*polls: tuple[float, set[str]]) -> WatchProgress:
    progress = WatchProgress()
    for seconds, firing in polls:
        progress.note_alerts(T0 + timedelta(seconds=seconds), firing)
    return progress


ALERTS = {"from": {"prometheus": "http://127.0.0.1:9090"}, "fire": ["DBDown"], "within": "10s"}


def test_expected_alerts_fire_and_resolve_unexpected_ones_are_named() -> None:
    progress = _alerts((0, set()), (3, {"DBDown", "Noise"}), (6, {"DBDown"}), (9, set()))
    healthy = T0 + timedelta(seconds=7)
    expect = AlertsExpect.model_validate({**ALERTS, "resolve_within": "5s"})
    line = judge_alerts(expect, progress, T0, healthy)
    assert line.held is True, line.miss
    assert "DBDown fired after 3.0s" in line.actual and "unexpected: Noise" in line.actual
    assert progress.resolved(["DBDown"])


def test_alerts_that_never_fire_or_never_resolve_miss() -> None:
    never = judge_alerts(AlertsExpect.model_validate(ALERTS), _alerts((0, set()), (5, set())), T0, None)
    assert never.held is False and never.miss == "alert DBDown never fired"
    stuck = _alerts((1, {"DBDown"}), (9, {"DBDown"}))
    expect = AlertsExpect.model_validate({**ALERTS, "resolve_within": "2s"})
    line = judge_alerts(expect, stuck, T0, T0 + timedelta(seconds=5))
    assert line.held is False and "did not resolve within 2s" in line.miss


def test_a_detector_that_held_from_the_watch_s_first_sample_before_the_fault_is_no_detection() -> None:
    always = _progress("d", [(-1, None, True), (2, None, True)])
    line, seconds = judge_detect(DetectExpect(probe="d", within=timedelta(seconds=30)), always, T0, T0)
    assert seconds is None and line.held is False
    assert line.miss == "not a detection: 'd' already held before the first fault (at the watch's first sample)"
    # held before, stopped holding, held again after the fault: that later hold is the detection
    again = _progress("d", [(-1, None, True), (0.5, None, False), (2, None, True)])
    line, seconds = judge_detect(DetectExpect(probe="d", within=timedelta(seconds=30)), again, T0, T0)
    assert line.held is True and seconds == pytest.approx(2)


def test_sequence_values_seen_while_the_first_fault_was_being_applied_count() -> None:
    # the breaker opened while the fault's apply ran (before applied_at): CLOSED is still the start of its story
    progress = _progress("b", [(-1, "CLOSED", True), (-0.2, "OPEN", True), (3, "HALF_OPEN", True), (5, "CLOSED", True)])
    wanted = ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"]
    line = judge_sequence(SequenceExpect(probe="b", values=wanted, within=timedelta(seconds=10)), progress, T0)
    assert line.held is True, line.actual


def test_an_alert_already_firing_before_the_first_fault_is_pre_existing_not_fired_by_it() -> None:
    progress = _alerts((-1, {"DBDown", "Old"}), (3, {"DBDown", "Old"}), (6, set()))
    line = judge_alerts(AlertsExpect.model_validate(ALERTS), progress, T0, T0 + timedelta(seconds=5))
    assert line.held is False
    assert line.miss == "alert DBDown was already firing before the first fault"
    assert "firing before the first fault: Old" in line.actual and "unexpected" not in line.actual


def test_the_watch_stays_bounded_in_payload_bytes_whatever_characters_the_values_hold() -> None:
    # control characters are six bytes each in JSON: a bound in characters alone let this reach ~1 MB
    progress = WatchProgress()
    keep = progress.keep(MAX_WATCH)
    for n in range(MAX_WATCH):
        watched = progress.probe(f"probe-{n}", "a.b")
        for i in range(2 * keep + 2):
            value = value_text(chr(1 + i % 2) * 5000 + str(i))
            watched.note(T0 + timedelta(seconds=i), value, bool(i % 3), "\x02" * 5000, keep)
    for i in range(60):
        progress.note_alerts(T0 + timedelta(seconds=i), {"\x03" * 5000 + str(i)})
    assert len(progress.model_dump_json().encode()) < 256 * 1024


ISSUE_FORM = """
name: issue-form
targets: {sh: {command: {}}}
faults: [{target: sh, action: run, run: "true", revert: "true"}]
observe:
  interval: 500ms
  watch:
    - name: breaker
      http: {url: "http://127.0.0.1:8000/health"}
      record: breaker.state
    - name: says-degraded
      http: {url: "http://127.0.0.1:8000/health", body_json: {path: degraded, equals: true}}
  expect:
    sequence: {probe: breaker, values: [CLOSED, OPEN, HALF_OPEN, CLOSED], within: 60s}
    detect: {probe: says-degraded, within: 30s}
"""


def test_the_issue_s_exact_form_record_beside_http_loads_as_http_record() -> None:
    drill = parse_drill(ISSUE_FORM, "w.yaml")
    breaker = drill.observe.watch[0]
    assert breaker.http is not None and breaker.http.record == "breaker.state"
    twice = ISSUE_FORM.replace('http: {url: "http://127.0.0.1:8000/health"}', 'http: {url: "http://x:1/", record: a}')
    with pytest.raises(DrillFileError, match="record given twice"):
        parse_drill(twice, "w.yaml")
    tcp = ISSUE_FORM.replace('http: {url: "http://127.0.0.1:8000/health"}', 'tcp: {host: "127.0.0.1", port: 1}')
    with pytest.raises(DrillFileError, match="is for an http probe"):
        parse_drill(tcp, "w.yaml")
