"""The JSONPath subset gameday evaluates for ``jsonpath`` tolerances (chaoslib uses the ``jsonpath2`` library).

Supported: ``$``, ``.key``, ``['key']``, ``[n]`` (negative counts from the end), ``[*]`` and ``.*``, ``..key``
(recursive descent), and filters ``[?(@.key)]``, ``[?(@.key OP literal)]`` with OP one of ``== != < <= > >=``
and a JSON literal. Anything else is a :class:`JsonPathError` (the probe then fails, saying so): documented in
docs/CHAOSTOOLKIT.md.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

_TOKEN = re.compile(
    r"""\.\.(?P<deep>[A-Za-z_][\w-]*|\*)
      | \.(?P<key>[A-Za-z_][\w-]*|\*)
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*\*\s*\]
      | \[\s*(?P<quote>['"])(?P<qkey>.*?)(?P=quote)\s*\]
      | \[\s*\?\(\s*@\.(?P<fkey>[\w-]+)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<literal>.+?))?\s*\)\s*\]""",
    re.VERBOSE,
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class JsonPathError(ValueError):
    """A path outside the supported subset."""


def find(path: str, document: Any) -> list[Any]:
    """Every value ``path`` matches in ``document``, in document order."""
    text = path.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath {path!r} must start with $")
    current = [document]
    position = 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JsonPathError(f"JSONPath {path!r}: unsupported from {text[position:]!r}")
        current = [found for value in current for found in _step(match, value)]
        position = match.end()
    return current


def _step(match: re.Match[str], value: Any) -> Iterator[Any]:
    groups = match.groupdict()
    if groups["deep"] is not None:
        yield from _descend(groups["deep"], value)
    elif groups["key"] is not None or groups["qkey"] is not None:
        key = groups["key"] if groups["key"] is not None else groups["qkey"]
        yield from _children(value) if key == "*" and groups["qkey"] is None else _child(key, value)
    elif groups["index"] is not None:
        if isinstance(value, list):
            index = int(groups["index"])
            if -len(value) <= index < len(value):
                yield value[index]
    elif groups["fkey"] is not None:
        yield from (item for item in _children(value) if _keep(groups, item))
    else:  # [*]
        yield from _children(value)


def _child(key: str, value: Any) -> Iterator[Any]:
    if isinstance(value, dict) and key in value:
        yield value[key]


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list):
        yield from value


def _descend(key: str, value: Any) -> Iterator[Any]:
    if key == "*":
        for child in _children(value):
            yield child
            yield from _descend(key, child)
        return
    yield from _child(key, value)
    for child in _children(value):
        yield from _descend(key, child)


def _keep(groups: dict[str, str | None], item: Any) -> bool:
    key = groups["fkey"]
    if not isinstance(item, dict) or key not in item:
        return False
    if groups["op"] is None:
        return True
    literal = (groups["literal"] or "").strip()
    try:
        expected = json.loads(literal.replace("'", '"'))
    except json.JSONDecodeError as exc:
        raise JsonPathError(f"filter literal {literal!r} is not a JSON value") from exc
    try:
        return _OPS[groups["op"] or "=="](item[key], expected)
    except TypeError:
        return False
