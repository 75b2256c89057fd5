"""Chaos Toolkit experiments read and translated into drills, so DrillWorkflow runs them durably (issue 16).

An experiment file (JSON or YAML) is recognised by its top-level keys (``method``, ``steady-state-hypothesis``).
:func:`parse_experiment` validates it against Chaos Toolkit's format (``model/ctk_format.py``), not the drill
schema, every problem located (file, line, key), and translates it:

* the steady-state hypothesis → a ``chaostoolkit`` probe run in preflight (``mode: before``: not met → NOT_STEADY,
  nothing runs) and one run once while the method's effects hold (``mode: during``: not met → DEVIATED);
* the method → one ``chaostoolkit`` fault, ``method``, whose apply plays it and whose revert runs the rollbacks
  (``ref``s resolved): registered before the method starts, so they run on every exit path;
* configuration and secrets travel as references, resolved by the worker (``activities/ctk/runner.py``).

Keys gameday does not act on are accepted and listed (:attr:`Translation.notes`), never refused.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from gameday.model import budget
from gameday.model.ctk_format import Activity, Context, Experiment, Ref
from gameday.model.drill import DEFAULT_MAX_DURATION, Drill, Guardrail
from gameday.model.errors import DrillFileError, Problem
from gameday.model.kinds.chaostoolkit import MethodFault
from gameday.model.loader_limits import drill_problems
from gameday.model.loader_messages import problems_from_validation
from gameday.model.loader_yaml import YamlDocument, has_top_level_key, read_yaml

ACTED_ON = (
    "title",
    "description",
    "tags",
    "configuration",
    "secrets",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "controls",
)
"""Top-level keys gameday reads; every other key is accepted and listed as not acted on."""
ROLLBACKS_WITHIN = 55.0
"""Seconds every rollback together may take: they run in one revert activity (60 s limit)."""
RECOGNISED_BY = ("method", "steady-state-hypothesis")
TARGET = "experiment"
"""The translated drill's one target name."""
OBSERVE_ONCE = timedelta(milliseconds=500)
"""The observation window (and interval) of a translated experiment: one check of the hypothesis after the method."""


@dataclass(frozen=True)
class Overrides:
    """What a drill adds around an experiment without touching its file (``gameday run`` flags or a sidecar).

    Attributes:
        name: the drill's name (default: the title, made an id).
        team: the drill's team.
        max_duration: the hard cap (default: the method's and rollbacks' budgets, at least 15 minutes).
        notify_slack: a Slack channel for the run's messages.
        guardrails: ``stop_when`` guardrails (``--guardrail command:CMD`` or ``http:URL``, or a sidecar's list in
            the drill format): sampled while the method plays and during the hypothesis after; one that answers
            stops the run (ABORTED), the rollbacks run.
    """

    name: str | None = None
    team: str | None = None
    max_duration: str | None = None
    notify_slack: str | None = None
    guardrails: tuple[Any, ...] = ()


def guardrail_of(text: str) -> dict[str, Any]:
    """A ``--guardrail`` value as a drill's guardrail: ``command:CMD`` (stop when CMD exits 0) or ``http:URL``
    (stop when URL answers 200).

    Raises:
        ValueError: another form.
    """
    kind, _, rest = text.partition(":")
    if kind == "command" and rest.strip():
        return {"name": f"stop when `{rest.strip()}` succeeds", "stop_when": {"command": {"run": rest.strip()}}}
    if kind == "http" and rest.strip():
        return {"name": f"stop when {rest.strip()} answers 200", "stop_when": {"http": {"url": rest.strip()}}}
    raise ValueError(
        f"--guardrail {text!r}: write command:CMD (stop when CMD exits 0) or http:URL (stop when it answers 200)"
    )


@dataclass(frozen=True)
class Translation:
    """An experiment as a drill, and what gameday says about it.

    Attributes:
        experiment: the validated experiment.
        drill: the drill DrillWorkflow runs.
        notes: keys accepted but not acted on, controls not run.
        warnings: what the person should fix (a method action with no rollback).
    """

    experiment: Experiment
    drill: Drill
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


SIDECAR_KEYS = ("experiment", "name", "team", "max_duration", "notify_slack", "guardrails")
"""A sidecar file: the experiment it names (a path, relative to the sidecar) and what it adds."""


def parse_sidecar(text: str, file: str) -> Translation:
    """A sidecar YAML (``experiment: checkout.json`` plus ``name``, ``team``, ``max_duration``, ``notify_slack``):
    the experiment it names, translated with these added.

    Raises:
        DrillFileError: a problem of the sidecar (located in it) or of the experiment (located in that file).
    """
    from pathlib import Path

    document = read_yaml(text, file)
    problems = list(document.problems)
    for key, value in document.data.items():
        if key not in SIDECAR_KEYS:
            problems.append(document.problem((key,), f"unknown key; a sidecar has: {', '.join(SIDECAR_KEYS)}"))
        elif key == "guardrails":
            if not isinstance(value, list):
                problems.append(document.problem((key,), "expected a list of guardrails (stop_when form)"))
        elif not isinstance(value, str):
            problems.append(document.problem((key,), "expected a string"))
    if "experiment" not in document.data:
        problems.append(document.problem((), "a sidecar names its experiment file: experiment: PATH"))
    if problems:
        raise DrillFileError(problems)
    listed = document.data.get("guardrails")
    guardrails = tuple(listed) if isinstance(listed, list) else ()
    given = {str(k): str(v) for k, v in document.data.items() if k != "guardrails"}
    path = Path(file).parent / given.pop("experiment")
    try:
        experiment_text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DrillFileError([document.problem(("experiment",), f"cannot read {path}: {exc.strerror}")]) from exc
    return parse_experiment(experiment_text, str(path), Overrides(**given, guardrails=guardrails))


def is_experiment_data(data: object) -> bool:
    return isinstance(data, dict) and any(key in data for key in RECOGNISED_BY) and "faults" not in data


def is_experiment_text(text: str, keys: tuple[str, ...] = RECOGNISED_BY) -> bool:
    """Whether a file's text is a Chaos Toolkit experiment (its top level has ``method`` or
    ``steady-state-hypothesis``; with ``keys``, one of those), read from YAML parser events only, like
    ``is_gameday_text``."""
    return has_top_level_key(text, keys)


def parse_experiment(text: str, file: str = "<experiment>", overrides: Overrides | None = None) -> Translation:
    """Validate an experiment's text and translate it into a drill.

    Raises:
        DrillFileError: every problem, located, in file order.
    """
    document = read_yaml(text, file)
    problems = list(document.problems)
    data = document.data
    inline = _secret_problems(document)
    problems += inline
    experiment: Experiment | None = None
    if not document.problems:
        acted_on = {k: v for k, v in data.items() if k in ACTED_ON and not (inline and k == "secrets")}
        try:
            experiment = Experiment.model_validate(acted_on)
        except ValidationError as exc:
            for found in problems_from_validation(exc, Experiment):
                problems.append(document.problem(found.path, found.message, at_key=found.at_key))
    if experiment is None or problems:
        raise DrillFileError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    method, rollbacks, ref_problems = _resolve_refs(experiment, document)
    if ref_problems:
        raise DrillFileError(ref_problems)
    rollback_budget = sum(a.budget - (a.provider.time_limit if a.provider.timeout is None else 0) for a in rollbacks)
    if rollback_budget > ROLLBACKS_WITHIN:
        raise DrillFileError(
            [
                document.problem(
                    ("rollbacks",),
                    f"the rollbacks' timeouts and pauses add up to {rollback_budget:g}s; at most {ROLLBACKS_WITHIN:g}s "
                    "(they run in one revert, whose limit is 60s)",
                )
            ]
        )
    notes = [f"{key}: accepted, not acted on by gameday" for key in data if key not in ACTED_ON]
    notes += _control_notes(experiment)
    warnings = _duplicate_names(experiment)
    if not experiment.rollbacks:
        for activity in method:
            if activity.type == "action":
                warnings.append(f"method action {activity.name!r} has no rollback: what it changes stays changed")
    drill = _drill(experiment, method, rollbacks, overrides or Overrides(), document)
    return Translation(experiment, drill, notes, warnings)


def read_experiment_data(path: str) -> dict[str, Any] | None:
    """An experiment file's data as written (for a journal's ``experiment``); ``None`` if it cannot be read or is
    not an experiment any more."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
        data = read_yaml(text, path).data
    except (OSError, UnicodeDecodeError, DrillFileError):
        return None
    return {str(k): v for k, v in data.items()} if is_experiment_data(data) else None


def _resolve_refs(
    experiment: Experiment, document: YamlDocument
) -> tuple[list[Activity], list[Activity], list[Problem]]:
    """The method and rollbacks with each ``{ref: name}`` replaced by the activity it names, as chaoslib resolves
    it: among the method's activities and the hypothesis's probes, cached before anything runs, the last of a name
    winning (so a ref may name a hypothesis probe, or a method activity after it)."""
    hypothesis = experiment.steady_state_hypothesis.probes if experiment.steady_state_hypothesis else []
    named: dict[str, Activity] = {
        item.name: item for item in [*experiment.method, *hypothesis] if isinstance(item, Activity)
    }
    problems: list[Problem] = []

    def resolve(items: list[Activity | Ref], where: str) -> list[Activity]:
        out: list[Activity] = []
        for i, item in enumerate(items):
            if isinstance(item, Ref):
                found = named.get(item.ref)
                if found is None:
                    known = ", ".join(sorted(named)) or "none"
                    problems.append(
                        document.problem(
                            (where, i, "ref"),
                            f"no method activity or hypothesis probe named {item.ref!r}; named: {known}",
                        )
                    )
                    continue
                out.append(found)
            else:
                out.append(item)
        return out

    method = resolve(list(experiment.method), "method")
    rollbacks = resolve(list(experiment.rollbacks), "rollbacks")
    return method, rollbacks, problems


def _duplicate_names(experiment: Experiment) -> list[str]:
    hypothesis = experiment.steady_state_hypothesis.probes if experiment.steady_state_hypothesis else []
    names = [item.name for item in [*experiment.method, *hypothesis] if isinstance(item, Activity)]
    return [
        f"activity name {name!r} is used {names.count(name)} times: a ref runs the last one, as chaoslib does"
        for name in dict.fromkeys(names)
        if names.count(name) > 1
    ]


def _secret_problems(document: YamlDocument) -> list[Problem]:
    secrets = document.data.get("secrets")
    if not isinstance(secrets, dict):
        return []
    problems: list[Problem] = []
    for group, values in secrets.items():
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            if not isinstance(value, dict):
                path: tuple[Hashable, ...] = ("secrets", group, name)
                problems.append(
                    document.problem(
                        path,
                        "an inline secret would enter the workflow's history: write {type: env, key: NAME} "
                        "and give NAME to the worker (GAMEDAY_DRILL_SECRETS)",
                    )
                )
    return problems


def _control_notes(experiment: Experiment) -> list[str]:
    found = []
    if experiment.controls:
        found.append(f"controls: {len(experiment.controls)} accepted, not run by gameday")
    hypothesis = experiment.steady_state_hypothesis
    if hypothesis is not None and hypothesis.controls:
        found.append("steady-state-hypothesis.controls: accepted, not run by gameday")
    for activity in [*experiment.method, *experiment.rollbacks]:
        if isinstance(activity, Activity) and activity.controls:
            found.append(f"controls of {activity.name!r}: accepted, not run by gameday")
    return found


def _method_guards(guardrails: tuple[Any, ...], doc: YamlDocument) -> list[dict[str, Any]]:
    """The wrapper's guardrails as the method's runner samples them: the ``stop_when`` form only (the others judge
    observation samples or traffic, which do not exist while the method plays)."""
    out = []
    for i, given in enumerate(guardrails):
        try:
            guard = Guardrail.model_validate(given)
        except ValidationError as exc:
            raise DrillFileError([doc.problem((), f"guardrail {i}: {exc.errors()[0]['msg']}")]) from exc
        if guard.stop_when is None:
            why = f"guardrail {guard.name!r}: only the stop_when form watches an experiment's method while it plays"
            raise DrillFileError([doc.problem((), why)])
        out.append({"name": guard.name, "http": guard.stop_when.http, "command": guard.stop_when.command})
    return out


def drill_name(title: str) -> str:
    """A drill name (an id) from an experiment's title."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-._")[:63]
    return slug or "experiment"


def _drill(
    experiment: Experiment, method: list[Activity], rollbacks: list[Activity], over: Overrides, doc: YamlDocument
) -> Drill:
    context = Context(configuration=experiment.configuration, secrets=experiment.secrets)
    hypothesis: list[dict[str, Any]] = []
    if experiment.steady_state_hypothesis is not None and experiment.steady_state_hypothesis.probes:
        spec = {"probes": experiment.steady_state_hypothesis.probes, "context": context}
        hypothesis = [
            {"name": "steady-state-before", "chaostoolkit": spec, "mode": "before"},
            {"name": "steady-state-after", "chaostoolkit": spec, "mode": "during"},
        ]
    fault = {
        "target": TARGET,
        "action": "method",
        "name": "method",
        "method": method,
        "rollbacks": rollbacks,
        "context": context,
        "guardrails": _method_guards(over.guardrails, doc),
    }
    data: dict[str, Any] = {
        "name": over.name or drill_name(experiment.title),
        "description": experiment.description or experiment.title,
        "targets": {TARGET: {"chaostoolkit": {"experiment": experiment.title}}},
        "hypothesis": hypothesis,
        "faults": [fault],
        "observe": {
            "duration": OBSERVE_ONCE,
            "interval": OBSERVE_ONCE,
            "min_coverage": 0,
            "guardrails": list(over.guardrails),
        },
    }
    if over.team:
        data["team"] = over.team
    if over.max_duration:
        data["max_duration"] = over.max_duration
    else:  # the method's own time limits, pauses and slack, at least the drill default
        method_budget = MethodFault.model_validate(fault).apply_budget() + OBSERVE_ONCE + timedelta(minutes=2)
        data["max_duration"] = min(max(DEFAULT_MAX_DURATION, method_budget), budget.MAX_DURATION)
    if over.notify_slack:
        data["notify"] = {"slack": {"channel": over.notify_slack}}
    try:
        drill = Drill.model_validate(data)
    except ValidationError as exc:
        raise DrillFileError([doc.problem((), f"cannot run as a drill: {exc.errors()[0]['msg']}")]) from exc
    # Held to a drill's payload budget: each ref is a whole activity in every payload that carries the method.
    too_big_here = [message for _, message in drill_problems(drill)]
    if too_big_here:
        said = "; ".join(
            m.replace("this fault with its target", "the experiment's method with its rollbacks") for m in too_big_here
        )
        raise DrillFileError([doc.problem(("method",), said)])
    return drill
