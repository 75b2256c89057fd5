"""Is a probe's output within its tolerance? Judged exactly as chaoslib's ``within_tolerance`` judges it.

The forms (docs/CHAOSTOOLKIT.md lists them): a boolean, string or integer compared with the output (an integer with
a process's or HTTP call's ``status`` when the output has one); a list (an output with a ``status``: that status in
the list; a two-item list: an inclusive range; otherwise membership); and the mappings ``range``, ``regex``,
``jsonpath`` (optionally with ``expect`` and ``count``) and ``probe`` (another activity called with ``value``; its
truthy result means within). A ``target`` key picks that key of a mapping output first.

Pure except for the ``probe`` form, whose activity the caller runs (``probe_runner``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from gameday.activities.ctk.jsonpath import JsonPathError, find

ProbeRunner = Callable[[dict[str, Any], Any], bool]
"""Runs a ``probe`` tolerance's activity with ``value`` added to its arguments: whether it returned truthy."""


class ToleranceError(ValueError):
    """A tolerance gameday cannot judge (an unknown mapping type, a bad JSONPath); the probe fails with it."""


def within_tolerance(tolerance: Any, value: Any, probe_runner: ProbeRunner | None = None) -> bool:
    """Whether ``value`` (a probe's output) is within ``tolerance``.

    Raises:
        ToleranceError: the tolerance cannot be judged.
    """
    if isinstance(tolerance, bool):  # before int: a bool is an int in Python, and chaoslib dispatches bool first
        return bool(value == tolerance)
    if isinstance(tolerance, str):
        return bool(value == tolerance)
    if isinstance(tolerance, int):
        if isinstance(value, dict) and "status" in value:
            return bool(value["status"] == tolerance)
        return bool(value == tolerance)
    if isinstance(tolerance, list):
        if isinstance(value, dict) and "status" in value:
            return value["status"] in tolerance
        if len(tolerance) == 2:
            try:
                return bool(tolerance[0] <= value <= tolerance[1])
            except TypeError as exc:
                raise ToleranceError(f"cannot compare {value!r} with the range {tolerance!r}") from exc
        return value in tolerance
    if isinstance(tolerance, dict):
        return _mapping(tolerance, value, probe_runner)
    raise ToleranceError(f"unsupported tolerance {tolerance!r}")


def _targeted(tolerance: dict[str, Any], value: Any) -> Any:
    target = tolerance.get("target")
    if target and isinstance(value, dict):
        return value.get(target, value)
    return value


def _mapping(tolerance: dict[str, Any], value: Any, probe_runner: ProbeRunner | None) -> bool:
    kind = tolerance.get("type")
    if kind == "probe":
        if probe_runner is None:
            raise ToleranceError("a probe tolerance needs a worker to run its probe")
        return probe_runner(tolerance, value)
    if kind == "regex":
        subject = _targeted(tolerance, value)
        if not isinstance(subject, str):
            raise ToleranceError(f"a regex tolerance needs a string output, got {type(subject).__name__}")
        return re.search(str(tolerance.get("pattern", "")), subject) is not None
    if kind == "jsonpath":
        return _jsonpath(tolerance, _targeted(tolerance, value))
    if kind == "range":
        subject = _targeted(tolerance, value)
        try:
            number = Decimal(subject)
            low, high = (Decimal(bound) for bound in tolerance["range"])
        except (InvalidOperation, TypeError, ValueError, KeyError):
            return False  # chaoslib: a value that is not a number is out of range
        return low <= number <= high
    raise ToleranceError(f"unsupported tolerance type {kind!r} (expected probe, regex, jsonpath or range)")


def _jsonpath(tolerance: dict[str, Any], subject: Any) -> bool:
    if isinstance(subject, bytes):
        subject = subject.decode("utf-8")
    if isinstance(subject, str):
        with contextlib.suppress(json.JSONDecodeError):
            subject = json.loads(subject)
    try:
        values = find(str(tolerance.get("path", "")), subject)
    except JsonPathError as exc:
        raise ToleranceError(str(exc)) from exc
    result = len(values) > 0
    if tolerance.get("count") is not None:
        result = len(values) == tolerance["count"]
    if "expect" in tolerance:
        expect = tolerance["expect"]
        result = values == (expect if isinstance(expect, list) else [expect])
    return result
