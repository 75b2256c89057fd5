"""A run's or a game day's verdict as JUnit XML, for CI pipelines (issue 15, section 5).

Layout (what GitHub test reporters, GitLab's ``artifacts:reports:junit`` and Jenkins' ``junit`` step all read):
a ``<testsuites>`` root holding one flat ``<testsuite>`` per drill. A game day is the same root named after the
day, one ``<testsuite>`` per drill (nested suites are not read by GitLab, so none are used). Each testsuite has a
``<testcase>`` per check: preflight and verify probes (the hypothesis), probes under fault, each
``observe.expect`` line, the guardrails, recovery, and each fault's revert (a fault not reverted is a failure).
What never ran (a NOT_STEADY run's later checks, a game-day drill never started) is ``<skipped>``.

Rendered from the stored record, already scrubbed of secrets, like the other formats; every text is escaped by
:mod:`xml.etree.ElementTree` and messages are cut to :data:`MESSAGE_MAX` characters so the file stays bounded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from gameday.model.gameday import GameDayRecord
from gameday.model.records import FaultState, Phase, ProbeResult, RunRecord, Verdict
from gameday.report.expect import expect_lines

MESSAGE_MAX = 500
"""Longest failure or skip message, in characters."""
CASES_MAX = 500
"""Most test cases per drill (a bound on the file; a drill has far fewer)."""


@dataclass(frozen=True)
class Case:
    """One check: ``outcome`` is ``passed``, ``failed`` or ``skipped``; ``message`` holds the figures."""

    name: str
    classname: str
    outcome: str
    message: str = ""


def _cut(text: str) -> str:
    text = " ".join(text.split())
    # XML 1.0 forbids most control characters even escaped: drop them.
    text = "".join(c for c in text if c >= " " or c in "\t")
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def _probe_case(result: ProbeResult, group: str) -> Case:
    figures = f"{result.failures} of {result.samples} sample(s) failed"
    if result.problems:
        figures += ": " + "; ".join(result.problems[:5])
    return Case(f"{group}: {result.probe}", group, "passed" if result.ok else "failed", figures)


def drill_cases(record: RunRecord) -> list[Case]:
    """The checks of one run, in the order the drill ran them."""
    cases = [_probe_case(r, "preflight") for r in record.probes if r.phase is Phase.PREFLIGHT]
    not_steady = record.verdict is Verdict.NOT_STEADY
    skip_why = "never ran: the system was not steady before any fault (NOT_STEADY)"
    finished = record.verdict is not None
    cases += [_probe_case(r, "observe") for r in record.probes if r.phase is Phase.OBSERVE]
    for line in expect_lines(record):
        name = f"expect: {line.name}"
        if not_steady or line.held is None:
            # A judged expectation's line says why it was not judged; a traffic level without traffic says nothing.
            said = line.measured if line.measured.startswith("not judged") else f"not judged: {line.measured}"
            said = said if line.measured not in ("", "-") else "nothing measured"
            why = skip_why if not_steady else f"{said} (expected {line.threshold})"
            cases.append(Case(name, "expect", "skipped", why))
        else:
            message = f"measured {line.measured} under fault, threshold {line.threshold}"
            cases.append(Case(name, "expect", "passed" if line.held else "failed", message))
    stop = record.stop
    if not_steady:
        cases.append(Case("guardrails", "guardrails", "skipped", skip_why))
    elif stop is not None and stop.by == "guardrail":
        cases.append(Case("guardrails", "guardrails", "failed", stop.reason))
    elif finished:
        cases.append(Case("guardrails", "guardrails", "passed", "no guardrail breached"))
    for fault in record.faults:
        name = f"revert: {fault.label} on {fault.target}"
        if fault.state is FaultState.NOT_REVERTED:
            cases.append(Case(name, "revert", "failed", f"NOT REVERTED, may still be in place: {fault.error}"))
        elif fault.state is FaultState.REGISTERED and finished and not fault.applied_at:
            cases.append(Case(name, "revert", "skipped", "never applied"))
        elif fault.state is FaultState.FAILED:
            cases.append(Case(name, "revert", "passed", f"apply failed, revert ran: {fault.error}"))
        else:
            cases.append(Case(name, "revert", "passed", fault.state.value))
    if not_steady and not record.faults:
        cases.append(Case("revert: faults", "revert", "skipped", "nothing was injected (NOT_STEADY)"))
    verify = [r for r in record.probes if r.phase is Phase.VERIFY]
    cases += [_probe_case(r, "verify") for r in verify]
    if not_steady:
        cases.append(Case("recovery", "recovery", "skipped", skip_why))
    elif record.verdict is Verdict.NOT_RECOVERED:
        cases.append(Case("recovery", "recovery", "failed", record.summary or "did not return to steady state"))
    elif record.time_to_recovery is not None:
        cases.append(Case("recovery", "recovery", "passed", f"recovered in {record.time_to_recovery:.1f} s"))
    elif finished:
        cases.append(Case("recovery", "recovery", "skipped", f"not judged ({record.verdict})"))
    if record.verdict in (Verdict.ERROR, Verdict.ABORTED, Verdict.INCONCLUSIVE):
        # Not a check's failure but the run's: one case so a pipeline sees it.
        cases.append(Case("verdict", "verdict", "failed", f"{record.verdict}: {record.summary or record.error}"))
    if record.verdict is None:
        cases.append(Case("verdict", "verdict", "skipped", f"still running ({record.phase.value})"))
    return cases[:CASES_MAX]


def _suite(parent: ET.Element, name: str, cases: list[Case], *, group: str, time: float | None, timestamp: str) -> None:
    failures = sum(c.outcome == "failed" for c in cases)
    skipped = sum(c.outcome == "skipped" for c in cases)
    suite = ET.SubElement(
        parent,
        "testsuite",
        name=_cut(name),
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{time or 0.0:.3f}",
        timestamp=timestamp,
    )
    for case in cases:
        element = ET.SubElement(suite, "testcase", name=_cut(case.name), classname=_cut(f"{group}.{case.classname}"))
        element.set("time", "0")
        if case.outcome == "failed":
            ET.SubElement(element, "failure", message=_cut(case.message), type="failure").text = _cut(case.message)
        elif case.outcome == "skipped":
            ET.SubElement(element, "skipped", message=_cut(case.message))
        elif case.message:
            ET.SubElement(element, "system-out").text = _cut(case.message)


def _group(drill_name: str) -> str:
    """A case's ``classname`` prefix: the drill's name without dots (Jenkins reads dots as packages)."""
    return drill_name.replace(".", "_")


def _duration(record: RunRecord) -> float | None:
    return (record.ended_at - record.started_at).total_seconds() if record.ended_at else None


def _root(name: str, parent_totals: ET.Element) -> str:
    suites = parent_totals.findall("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        parent_totals.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    parent_totals.set("name", _cut(name))
    ET.indent(parent_totals)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(parent_totals, encoding="unicode") + "\n"


def _add_run(root: ET.Element, record: RunRecord) -> None:
    name = f"{record.drill_name} ({record.run_id})"
    cases = drill_cases(record)
    _suite(
        root,
        name,
        cases,
        group=_group(record.drill_name),
        time=_duration(record),
        timestamp=record.started_at.isoformat(),
    )


def render_junit(record: RunRecord) -> str:
    """One run as JUnit XML: a ``<testsuites>`` root with the drill's ``<testsuite>``."""
    root = ET.Element("testsuites")
    _add_run(root, record)
    return _root(f"gameday {record.drill_name}", root)


def render_gameday_junit(gameday: GameDayRecord, runs: Mapping[str, RunRecord]) -> str:
    """A game day as JUnit XML: a ``<testsuites>`` root named after the day, one ``<testsuite>`` per drill; a
    drill that never started (or whose record is missing) is a suite with one skipped case."""
    root = ET.Element("testsuites")
    for entry in gameday.entries:
        run = runs.get(entry.run_id) if entry.run_id else None
        if run is not None:
            _add_run(root, run)
            continue
        why = entry.skipped or ("record not found" if entry.run_id else "never started")
        stamp = (entry.started_at or gameday.started_at).isoformat()
        case = Case("drill", "drill", "skipped", why)
        name = f"{entry.drill_name} ({entry.run_id or 'not run'})"
        _suite(root, name, [case], group=_group(entry.drill_name), time=None, timestamp=stamp)
    return _root(f"gameday {gameday.name} ({gameday.gameday_id})", root)
