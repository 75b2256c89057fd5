"""YAML text → plain data, plus where every key and value is written, so problems can point at a line.

``yaml.safe_load`` forgets positions and silently keeps the last of two equal keys. Composing the node tree
first keeps both: every node has a start mark, and each mapping is checked for repeated keys before it
becomes a dict. Only PyYAML's safe constructors run, so a drill file can never build arbitrary objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field

import yaml

from gameday.model import budget
from gameday.model.errors import DrillFileError, Problem
from gameday.model.loader_limits import BoundedLoader, expansion_problem, too_big

FieldPath = tuple[Hashable, ...]
"""Keys and list indices from the top of the file: ``("faults", 1, "latency")``."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
# PyYAML's constructors raise plain Python errors (not YAMLError) for malformed explicitly tagged scalars,
# e.g. ``!!int abc`` (ValueError), ``!!int ""`` (IndexError) or ``!!timestamp x`` (AttributeError); they are
# still the file's fault, not ours.
_CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError, LookupError)

_Duplicate = tuple[FieldPath, "Place", str]


@dataclass(frozen=True)
class Place:
    """Where something is written in the file; both numbers are 1-based."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Place:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class Located:
    """One field of the file: its node, where its key is written (none for list items) and its value."""

    node: yaml.Node
    key: Place | None
    value: Place

    def place(self, *, at_key: bool = False) -> Place:
        """The key's place for problems about the key or a nested block; the value's for a written value."""
        written = isinstance(self.node, yaml.ScalarNode) and self.node.start_mark.index != self.node.end_mark.index
        if self.key is not None and (at_key or not written):
            return self.key
        return self.value


@dataclass
class YamlDocument:
    """A drill file read as YAML: its data and the place of every field path in it.

    Attributes:
        file: The file name used in problems.
        data: The top-level mapping as plain Python data.
        places: Every field path written in the file (the top level is ``()``).
        problems: Problems YAML itself lets through, such as a key written twice in one mapping.
    """

    file: str
    data: dict[Hashable, object]
    places: dict[FieldPath, Located]
    problems: list[Problem] = field(default_factory=list)

    def nearest(self, path: FieldPath) -> Located:
        """The deepest written field on ``path``: a missing key is reported where its parent is written."""
        for depth in range(len(path), 0, -1):
            located = self.places.get(path[:depth])
            if located is not None:
                return located
        return self.places[()]

    def render(self, path: FieldPath) -> str:
        """``("faults", 1, "latency")`` → ``faults[1].latency``."""
        out = ""
        for depth, segment in enumerate(path):
            parent = self.places.get(path[:depth])
            if parent is not None:
                is_index = isinstance(parent.node, yaml.SequenceNode)
            else:
                is_index = isinstance(segment, int) and not isinstance(segment, bool)
            if is_index:
                out += f"[{segment}]"
            elif isinstance(segment, str) and _PLAIN_KEY.fullmatch(segment):
                out += f".{segment}" if out else segment
            elif isinstance(segment, str):
                out += f"[{json.dumps(segment)}]"
            else:  # a key YAML read as a number or a date: the drill model rejects it anyway
                out += f".{segment}" if out else str(segment)
        return out

    def problem(self, path: FieldPath, message: str, *, at_key: bool = False) -> Problem:
        """A problem about ``path``, placed at the nearest line of the file that holds it."""
        place = self.nearest(path).place(at_key=at_key or path not in self.places)
        return Problem(self.file, place.line, place.column, self.render(path), message)


def has_top_level_key(text: str, keys: Collection[str]) -> bool:
    """Whether YAML text is a mapping whose top level has one of ``keys``.

    Reads parser events only, never builds a value: a malformed, deep or alias-laden file answers ``False``
    here, and the loader then reports what is wrong with it, located.
    """
    depth = 0
    expect_key = False
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                    return False
                depth += 1
                expect_key = depth == 1
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                if depth == 0:
                    return False  # the top-level mapping ended without one of the keys
                expect_key = depth == 1  # a value ended: a key comes next
                continue
            if depth == 1 and isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if expect_key and isinstance(event, yaml.ScalarEvent) and event.value in keys:
                    return True
                expect_key = not expect_key
    except yaml.YAMLError:
        return False
    return False


def read_yaml(text: str, file: str) -> YamlDocument:
    """Compose, check and construct one YAML document whose top level must be a mapping.

    Raises:
        DrillFileError: for text that is not YAML, is empty, or whose top level is not a mapping.
    """
    # PyYAML skips a byte-order mark but counts it as a column of line 1; drop it so columns match editors.
    text = text.removeprefix("\ufeff")
    size = len(text.encode("utf-8", "replace"))
    if size > budget.MAX_FILE_BYTES:
        raise DrillFileError([Problem(file, None, None, "", too_big("the file", size, budget.MAX_FILE_BYTES))])
    try:
        # The reader rejects control characters as soon as it is created, before composing starts.
        loader = BoundedLoader(text, file)
    except yaml.YAMLError as exc:
        raise DrillFileError([_yaml_problem(exc, text, file)]) from exc
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise DrillFileError([_yaml_problem(exc, text, file)]) from exc
        except RecursionError as exc:
            # Nesting is bounded while composing; this is a last resort should a deep stack meet the bound.
            raise DrillFileError([Problem(file, None, None, "", "invalid YAML: nested too deeply")]) from exc
        if root is None:
            raise DrillFileError([Problem(file, 1, 1, "", "the file is empty; a drill needs at least a 'name'")])
        # Before anything is built from the nodes: an alias bomb is a few lines that expand to gigabytes.
        expansion = expansion_problem(root, file)
        if expansion is not None:
            raise DrillFileError([expansion])
        places, duplicates = _map_places(loader, root, file)
        data = _construct(loader, root, file, text)
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        start = Place.of(root.start_mark)
        got = "a list" if isinstance(data, list) else "nothing (null)" if data is None else repr(data)[:40]
        message = f"expected a mapping of drill keys (version, name, targets, …) at the top level, got {got}"
        raise DrillFileError([Problem(file, start.line, start.column, "", message)])
    document = YamlDocument(file, data, places)
    document.problems = [
        Problem(file, place.line, place.column, document.render(path), message) for path, place, message in duplicates
    ]
    return document


def _construct(loader: yaml.SafeLoader, node: yaml.Node, file: str, text: str) -> object:
    try:
        return loader.construct_document(node)
    except _CONSTRUCT_ERRORS as exc:
        if isinstance(exc, yaml.YAMLError):
            raise DrillFileError([_yaml_problem(exc, text, file)]) from exc
        place = Place.of(node.start_mark)
        raise DrillFileError([Problem(file, place.line, place.column, "", f"invalid YAML value: {exc}")]) from exc


def _map_places(
    loader: yaml.SafeLoader, root: yaml.Node, file: str
) -> tuple[dict[FieldPath, Located], list[_Duplicate]]:
    """Walk the node tree in file order, recording each field's place and each repeated key."""
    places: dict[FieldPath, Located] = {(): Located(root, None, Place.of(root.start_mark))}
    duplicates: list[_Duplicate] = []
    seen: set[int] = set()
    stack: list[tuple[FieldPath, yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue  # an alias (maybe of itself): its contents are mapped where the anchor is written
        seen.add(id(node))
        children: list[tuple[FieldPath, yaml.Node]] = []
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                places[(*path, index)] = Located(item, None, Place.of(item.start_mark))
                children.append(((*path, index), item))
        elif isinstance(node, yaml.MappingNode):
            children = _map_mapping(loader, node, path, places, duplicates, file)
        else:
            _construct_scalar(loader, node, file)
        stack.extend(reversed(children))
    return places, duplicates


def _map_mapping(
    loader: yaml.SafeLoader,
    node: yaml.MappingNode,
    path: FieldPath,
    places: dict[FieldPath, Located],
    duplicates: list[_Duplicate],
    file: str,
) -> list[tuple[FieldPath, yaml.Node]]:
    children: list[tuple[FieldPath, yaml.Node]] = []
    first_written: dict[Hashable, Place] = {}
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:  # `<<: *base`: explicit keys win, so map merged ones afterwards
            merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            continue  # a collection as a key: construction reports it as unhashable
        key = _construct_scalar(loader, key_node, file)
        if not isinstance(key, Hashable):
            continue
        key_place = Place.of(key_node.start_mark)
        if key in first_written:
            message = f"duplicate key {key!r}; it is first written on line {first_written[key].line}"
            duplicates.append(((*path, key), key_place, message))
            continue
        first_written[key] = key_place
        places[(*path, key)] = Located(value_node, key_place, Place.of(value_node.start_mark))
        children.append(((*path, key), value_node))
    for source in merged:
        if isinstance(source, yaml.MappingNode):
            for key_node, value_node in source.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    key = _construct_scalar(loader, key_node, file)
                    if isinstance(key, Hashable) and (*path, key) not in places:
                        places[(*path, key)] = Located(
                            value_node, Place.of(key_node.start_mark), Place.of(value_node.start_mark)
                        )
    return children


def _construct_scalar(loader: yaml.SafeLoader, node: yaml.Node, file: str) -> object:
    """Build one scalar now, so a malformed value is reported where it is written."""
    try:
        return loader.construct_object(node)
    except _CONSTRUCT_ERRORS as exc:
        place = Place.of(node.start_mark)
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        if isinstance(exc, yaml.MarkedYAMLError):
            reason = exc.problem or str(exc).splitlines()[0]
        elif isinstance(exc, ValueError | OverflowError):
            reason = str(exc)
        else:  # PyYAML's own bug surfacing (e.g. AttributeError): its text would only confuse
            reason = f"not a valid {tag} value"
        message = f"invalid YAML value {str(node.value)[:40]!r} tagged {tag}: {reason}"
        raise DrillFileError([Problem(file, place.line, place.column, "", message)]) from exc


def _yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> Problem:
    """One located problem from PyYAML's error, without its multi-line source excerpt."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        if mark is None:
            return Problem(file, None, None, "", message)
        return Problem(file, mark.line + 1, mark.column + 1, "", message)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return Problem(file, line, column, "", f"invalid YAML: {str(exc).splitlines()[0]}")
    return Problem(file, None, None, "", f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else exc!r}")
