"""The loader's half of the payload budget: a drill over a limit of ``model.budget`` is refused, located.

Three stages, each before the work it protects:

* :class:`BoundedLoader` composes YAML no deeper than :data:`~model.budget.MAX_DEPTH` (PyYAML composes
  recursively) and :func:`expansion_problem` measures the node graph with aliases expanded, before anything is
  built from it (a few hundred bytes of ``&a [*b, *b, …]`` expand to gigabytes);
* :func:`data_problems` checks counts, names, texts, mappings and ``json:`` bodies on the plain data, before the
  drill model validates it;
* :func:`drill_problems` checks what the workflow will carry: each fault with its target, and the whole drill.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING

import yaml

from gameday.model import budget
from gameday.model.errors import DrillFileError, Problem

if TYPE_CHECKING:
    from gameday.model.drill import Drill

FieldPath = tuple[Hashable, ...]
_LIMITS = "see Limits in docs/DRILL_FORMAT.md"
_COMMAND_KEYS = frozenset({"run", "revert", "restart"})
_MAPPINGS = frozenset({"headers", "labels"})


def too_big(what: str, size: int, limit: int) -> str:
    return f"{what} is {size:,} bytes; at most {limit:,} ({_LIMITS})"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than :data:`~model.budget.MAX_DEPTH` as it composes."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > budget.MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                message = f"nested deeper than {budget.MAX_DEPTH} levels of mappings and lists ({_LIMITS})"
                raise DrillFileError([Problem(self.file, mark.line + 1, mark.column + 1, "", message)])
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def expansion_problem(root: yaml.Node, file: str) -> Problem | None:
    """A problem if the document, aliases expanded, exceeds :data:`~model.budget.MAX_EXPANDED_BYTES`.

    Each distinct node is measured once (aliases share nodes), so the walk costs the file's size, not the
    expansion's. A collection that contains itself (``&a [*a]``) expands without end.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            sizes[key] = 2 + sum(sizes[id(child)] for child in _children(node))
            on_path.discard(key)
            continue
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = len(str(node.value).encode("utf-8", "replace")) + 1
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                return _at(child, file, "this value contains itself through an alias: it expands without end")
            if id(child) not in sizes:
                stack.append((child, False))
    size = sizes[id(root)]
    if size <= budget.MAX_EXPANDED_BYTES:
        return None
    # Point at the smallest value that is over the limit by itself: where the aliases pile up.
    node = root
    while True:
        bigger = [c for c in _children(node) if sizes[id(c)] > budget.MAX_EXPANDED_BYTES]
        if not bigger:
            break
        node = bigger[0]
    what = f"{'the file' if node is root else 'this value'}, with its aliases (*name) expanded,"
    return _at(node, file, too_big(what, sizes[id(node)], budget.MAX_EXPANDED_BYTES))


def data_problems(data: object, at: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """Limits a drill's plain data (as read from YAML, before the model) must keep, each as (path, message)."""
    problems: list[tuple[FieldPath, str]] = []
    if not isinstance(data, dict):
        return problems
    observe = data.get("observe")
    traffic = observe.get("traffic") if isinstance(observe, dict) else None
    counted: list[tuple[FieldPath, object, int, str]] = [
        (("faults",), data.get("faults"), budget.MAX_FAULTS, "faults"),
        (("hypothesis",), data.get("hypothesis"), budget.MAX_PROBES, "hypothesis probes"),
        (("targets",), data.get("targets"), budget.MAX_TARGETS, "targets"),
        (("observe", "guardrails"), observe.get("guardrails") if isinstance(observe, dict) else None,
         budget.MAX_GUARDRAILS, "guardrails"),
        (("observe", "traffic", "endpoints"), traffic.get("endpoints") if isinstance(traffic, dict) else None,
         budget.MAX_ENDPOINTS, "traffic endpoints"),
    ]  # fmt: skip
    for path, value, limit, what in counted:
        if isinstance(value, list | dict) and len(value) > limit:
            problems.append(((*at, *path), f"{len(value)} {what}; a drill may have at most {limit} ({_LIMITS})"))
    for path, name in _names(data):
        if len(name) > budget.MAX_NAME_CHARS:
            message = f"a name of {len(name)} characters; at most {budget.MAX_NAME_CHARS} ({_LIMITS})"
            problems.append(((*at, *path), message))
    for path, value in _walk(data):
        if path and path[-1] in {"json"} and isinstance(value, dict | list):
            problems.extend(((*at, *path), message) for message in _json_problems(value))
        elif isinstance(value, dict) and path and path[-1] in _MAPPINGS and len(value) > budget.MAX_MAPPING_KEYS:
            message = f"{len(value)} entries; at most {budget.MAX_MAPPING_KEYS} ({_LIMITS})"
            problems.append(((*at, *path), message))
        elif isinstance(value, str):
            limit = budget.MAX_COMMAND_BYTES if path and path[-1] in _COMMAND_KEYS else budget.MAX_TEXT_BYTES
            size = len(value.encode("utf-8", "replace"))
            if size > limit:
                what = "this command" if limit == budget.MAX_COMMAND_BYTES else "this text"
                problems.append(((*at, *path), too_big(what, size, limit)))
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and len(key.encode("utf-8", "replace")) > budget.MAX_TEXT_BYTES:
                    problems.append(((*at, *path), too_big("a key", len(key.encode()), budget.MAX_TEXT_BYTES)))
    return problems


def drill_problems(drill: Drill) -> list[tuple[FieldPath, str]]:
    """Limits on what the workflow carries: each fault with its target, and the whole drill, as JSON."""
    problems: list[tuple[FieldPath, str]] = []
    for i, fault in enumerate(drill.faults):
        target = drill.targets.get(fault.target)
        size = len(fault.model_dump_json(by_alias=True)) + (len(target.model_dump_json(by_alias=True)) if target else 0)
        if size > budget.MAX_FAULT_BYTES:
            problems.append((("faults", i), too_big("this fault with its target", size, budget.MAX_FAULT_BYTES)))
    size = len(drill.model_dump_json(by_alias=True))
    if size > budget.MAX_DRILL_BYTES:
        problems.append(((), too_big("the drill, as the workflow receives it,", size, budget.MAX_DRILL_BYTES)))
    return problems


def _json_problems(body: dict[object, object] | list[object]) -> Iterator[str]:
    depth, stack = 0, [(body, 1)]
    while stack:
        value, level = stack.pop()
        depth = max(depth, level)
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    if depth > budget.MAX_JSON_DEPTH:
        yield f"a JSON body nested {depth} levels deep; at most {budget.MAX_JSON_DEPTH} ({_LIMITS})"
    try:
        size = len(json.dumps(body, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    except (TypeError, ValueError):
        return  # keys that are not text: the drill model reports them
    if size > budget.MAX_JSON_BYTES:
        yield too_big("this JSON body", size, budget.MAX_JSON_BYTES)


def _names(data: dict[object, object]) -> Iterator[tuple[FieldPath, str]]:
    targets = data.get("targets")
    if isinstance(targets, dict):
        yield from ((("targets", key), key) for key in targets if isinstance(key, str))
    observe = data.get("observe")
    lists = [("faults",), ("hypothesis",)]
    for path in lists:
        items = data.get(path[0])
        yield from _item_names(path, items)
    if isinstance(observe, dict):
        yield from _item_names(("observe", "guardrails"), observe.get("guardrails"))
        yield from _item_names(("observe", "watch"), observe.get("watch"))


def _item_names(path: FieldPath, items: object) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                yield (*path, i, "name"), item["name"]


def _walk(data: object) -> Iterator[tuple[FieldPath, object]]:
    """Every value under ``data`` with its path; aliases are visited where each copy sits (the expansion is bounded)."""
    stack: list[tuple[FieldPath, object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(((*path, key), child) for key, child in reversed(value.items()) if isinstance(key, Hashable))
        elif isinstance(value, list):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(value))))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _at(node: yaml.Node, file: str, message: str) -> Problem:
    return Problem(file, node.start_mark.line + 1, node.start_mark.column + 1, "", message)
