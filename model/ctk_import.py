"""``gameday import experiment.json -o drill.yaml``: a Chaos Toolkit experiment rewritten with native drill keys.

What maps (docs/CHAOSTOOLKIT.md, "import"): hypothesis probes with an ``http`` provider and an integer (or list of
integers) tolerance become ``http`` probes (the status); ``process`` probes with an integer tolerance become
``command`` probes (the exit code). Method actions with a ``process`` provider become ``command`` faults, each
paired with the rollback at the same position among the process rollbacks (its ``revert``); ``http`` actions
become ``http`` ``call`` faults paired likewise with ``http`` rollbacks on the same origin. ``${name}`` of inline
configuration is substituted. Everything else is listed, with its line, as not converted: the drill it writes
leaves it out (run the experiment itself with ``gameday run`` to keep it).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from gameday.model.ctk import ACTED_ON, drill_name
from gameday.model.ctk_format import Activity, Experiment, Ref
from gameday.model.drill import Drill
from gameday.model.loader_yaml import YamlDocument, read_yaml

_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


@dataclass
class Imported:
    """The drill as YAML text, and every part of the experiment it could not convert, located.

    Attributes:
        text: the drill file.
        skipped: ``file:line: what: why`` for each part left out.
    """

    text: str
    skipped: list[str] = field(default_factory=list)


def import_experiment(experiment: Experiment, document: YamlDocument) -> Imported:
    """Convert what maps of ``experiment`` (read from ``document``) into a drill file's text."""
    found: list[tuple[int, int, str]] = []

    def skip(path: tuple[Any, ...], why: str) -> None:
        place = document.problem(path, why)
        found.append((place.line or 0, place.column or 0, str(place)))

    inline = {k: v for k, v in experiment.configuration.items() if not isinstance(v, dict)}
    for name, value in experiment.configuration.items():
        if isinstance(value, dict):
            skip(("configuration", name), "an environment value: a drill has no configuration; not converted")
    for group in experiment.secrets:
        skip(("secrets", group), "secrets: a drill reads ${env:NAME} in http headers only; not converted")
    for key in document.data:
        if key not in ACTED_ON:
            skip((key,), "not acted on by gameday; not converted")
    if experiment.controls:
        skip(("controls",), "controls are not run by gameday; not converted")

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            return _NAME.sub(lambda m: str(inline.get(m.group(1), m.group(0))), value)
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    targets: dict[str, Any] = {}
    hypothesis: list[dict[str, Any]] = []
    probes = experiment.steady_state_hypothesis.probes if experiment.steady_state_hypothesis else []
    for i, probe in enumerate(probes):
        converted = _probe(probe, sub)
        if converted is None:
            skip(
                ("steady-state-hypothesis", "probes", i),
                f"probe {probe.name!r}: only http probes with a status tolerance and process probes with an exit "
                "code tolerance convert",
            )
        else:
            hypothesis.append(converted)

    rollbacks = [r for r in experiment.rollbacks if isinstance(r, Activity)]
    for i, rollback in enumerate(experiment.rollbacks):
        if isinstance(rollback, Ref):
            skip(("rollbacks", i), f"ref {rollback.ref!r}: a drill's revert is paired with its fault; not converted")
    spare = {kind: [r for r in rollbacks if r.provider.type == kind] for kind in ("process", "http")}
    faults: list[dict[str, Any]] = []
    for i, activity in enumerate(experiment.method):
        if isinstance(activity, Ref):
            skip(("method", i), f"ref {activity.ref!r}: not converted")
            continue
        if activity.type == "probe":
            skip(("method", i), f"method probe {activity.name!r}: a drill's probes are its hypothesis; not converted")
            continue
        if activity.pauses is not None:
            skip(("method", i, "pauses"), "pauses: a drill holds its faults for observe.duration; not converted")
        fault = _fault(activity, spare, targets, sub)
        if fault is None:
            skip(("method", i), f"action {activity.name!r}: a {activity.provider.type} provider has no drill fault")
        else:
            faults.append(fault)
    for kind, left in spare.items():
        for rollback in left:
            where = ("rollbacks", experiment.rollbacks.index(rollback))
            skip(where, f"rollback {rollback.name!r}: no {kind} action left to pair it with; not converted")
    for rollback in rollbacks:
        if rollback.provider.type == "python":
            skip(("rollbacks", experiment.rollbacks.index(rollback)), "a python rollback has no drill revert")
    data: dict[str, Any] = {
        "version": 1,
        "name": drill_name(experiment.title),
        "description": experiment.description,
        "targets": targets,
        "hypothesis": hypothesis,
        "faults": faults,
        "observe": {"duration": "30s", "interval": "1s"},
    }
    Drill.model_validate(data)  # what is written must load
    skipped = [text for _, _, text in sorted(found)]
    header = f"# Converted from {document.file} by gameday import.\n"
    if skipped:
        header += "# Not converted (run the experiment itself with `gameday run` to keep these):\n"
        header += "".join(f"#   {line}\n" for line in skipped)
    return Imported(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), skipped)


def parse_and_import(text: str, file: str) -> Imported:
    """Validate the experiment (every problem located, as ``gameday validate``) and convert it."""
    from gameday.model.ctk import parse_experiment

    translation = parse_experiment(text, file)
    return import_experiment(translation.experiment, read_yaml(text, file))


def _probe(probe: Activity, sub: Any) -> dict[str, Any] | None:
    provider, tolerance = probe.provider, probe.tolerance
    statuses = tolerance if isinstance(tolerance, list) and all(_int(t) for t in tolerance) else None
    if provider.type == "http" and (_int(tolerance) or statuses):
        spec: dict[str, Any] = {"url": sub(provider.url), "status": tolerance}
        if provider.method.upper() in ("GET", "HEAD", "POST"):
            spec["method"] = provider.method.upper()
        if provider.timeout is not None:
            spec["timeout"] = f"{provider.time_limit:g}s"
        if provider.headers:
            spec["headers"] = sub(provider.headers)
        return {"name": probe.name, "http": spec}
    if provider.type == "process" and _int(tolerance):
        spec = {"run": _command(provider.path, sub(provider.arguments)), "exit_code": tolerance}
        if provider.timeout is not None:
            spec["timeout"] = f"{provider.time_limit:g}s"
        return {"name": probe.name, "command": spec}
    return None


def _fault(
    action: Activity, spare: dict[str, list[Activity]], targets: dict[str, Any], sub: Any
) -> dict[str, Any] | None:
    provider = action.provider
    if provider.type == "process":
        revert = spare["process"].pop(0) if spare["process"] else None
        targets.setdefault("shell", {"command": {}})
        fault: dict[str, Any] = {
            "target": "shell",
            "action": "run",
            "name": action.name,
            "run": _command(provider.path, sub(provider.arguments)),
            "revert": _command(revert.provider.path, sub(revert.provider.arguments)) if revert else "true",
        }
        if provider.timeout is not None:
            fault["timeout"] = f"{provider.time_limit:g}s"
        return fault
    if provider.type == "http":
        url = urlsplit(str(sub(provider.url)))
        origin = f"{url.scheme}://{url.netloc}"
        revert = next((r for r in spare["http"] if _origin(sub(r.provider.url)) == origin), None)
        if revert is None:
            return None
        spare["http"].remove(revert)
        name = f"api-{len([t for t in targets if t.startswith('api')]) + 1}"
        targets[name] = {"http": {"base_url": origin}}
        return {
            "target": name,
            "action": "call",
            "name": action.name,
            "request": _request(provider, sub),
            "revert": _request(revert.provider, sub),
        }
    return None


def _request(provider: Any, sub: Any) -> dict[str, Any]:
    url = urlsplit(str(sub(provider.url)))
    request: dict[str, Any] = {"method": provider.method.upper(), "path": url.path or "/"}
    if isinstance(provider.arguments, dict | list):
        request["json"] = sub(provider.arguments)
    return request


def _origin(url: Any) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}"


def _command(path: Any, arguments: Any) -> str:
    if isinstance(arguments, str):
        return f"{shlex.quote(str(path))} {arguments}"
    if isinstance(arguments, dict):
        arguments = [item for pair in arguments.items() for item in pair]
    return shlex.join([str(path), *(str(a) for a in arguments or [] if a not in (None, ""))])


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
