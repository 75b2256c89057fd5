"""Pydantic's validation errors → one problem per mistake, in the drill file's terms.

Pydantic's ``loc`` follows the model's types, not the file: a tagged union adds the tag (``faults.0.pause``),
a plain union adds the member (``status.int``), and dict keys add ``[key]``. Walking the same types here turns
a ``loc`` back into the path the user wrote, and knows which model a stray key was found in, so the message
can list the keys that model allows.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from gameday.model.loader_yaml import FieldPath
from gameday.model.units import DURATION_HINT


@dataclass(frozen=True)
class FieldProblem:
    """One validation problem, not yet placed in a file.

    Attributes:
        path: The field as written in the file: ``("faults", 1, "latency")``.
        message: What was expected, in one line.
        at_key: True when the problem is the key itself (unknown, not a string), not its value.
    """

    path: FieldPath
    message: str
    at_key: bool = False
    allowed: tuple[str, ...] = ()
    """For an unknown key: the keys its mapping accepts (merged across the members of a union)."""
    member: str = ""
    """Inside a plain union: the member whose validation found it (pydantic's name for it)."""


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "time_delta_type": DURATION_HINT,
    "time_delta_parsing": DURATION_HINT,
}
_BOUNDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}


@dataclass
class _Walk:
    """Where a ``loc`` leads: the file path, the type reached and the one holding the last key."""

    path: FieldPath = ()
    reached: Any = None
    owner: Any = None
    discriminator: str | None = None
    union_at: FieldPath | None = None
    member: str = ""
    is_key: bool = False


def problems_from_validation(error: ValidationError, model: type[BaseModel]) -> list[FieldProblem]:
    """Every error of ``error`` (raised validating ``model``) as a problem with a path and a plain message."""
    problems: list[FieldProblem] = []
    by_union: dict[FieldPath, list[FieldProblem]] = {}
    for details in error.errors():
        walk = _walk(model, details["loc"])
        allowed = tuple(_keys_of(walk.owner)) if details["type"] == "extra_forbidden" else ()
        problem = FieldProblem(
            walk.path,
            _message(details, walk),
            at_key=walk.is_key or _about_key(details),
            allowed=allowed,
            member=walk.member,
        )
        problems.extend(_unknown_beside_tag(details, walk))
        if walk.union_at is None:
            problems.append(problem)
        else:
            by_union.setdefault(walk.union_at, []).append(problem)
    for union_at, members in by_union.items():
        problems.extend(_one_per_union(union_at, members))
    return problems


def _one_per_union(union_at: FieldPath, members: list[FieldProblem]) -> list[FieldProblem]:
    """A value no member of ``int | list[int]`` accepts gives one error per member: keep the closest."""
    deeper = [p for p in members if len(p.path) > len(union_at)]
    if deeper:
        # The value had the shape of a member and failed inside it: that is the mistake. Of several such members,
        # the one with the fewest problems is the one meant ({fiel: a.yaml} is a misspelt file step, not a
        # parallel step missing its list).
        by_member: dict[str, list[FieldProblem]] = {}
        for problem in deeper:
            by_member.setdefault(problem.member, []).append(problem)
        fewest = min(len(found) for found in by_member.values())
        closest = [p for found in by_member.values() if len(found) == fewest for p in found]
        return _merge_unknown(closest)
    got = {p.message.partition(", got ")[2] for p in members}
    wanted = [p.message.removeprefix("expected ").partition(", got ")[0] for p in members]
    if len(got) == 1 and all(p.message.startswith("expected ") for p in members):
        return [FieldProblem(union_at, f"expected {' or '.join(wanted)}, got {got.pop()}")]
    return [FieldProblem(union_at, "; or ".join(p.message for p in members))]


def _merge_unknown(problems: list[FieldProblem]) -> list[FieldProblem]:
    """A key no member of a union accepts is one problem, listing the keys of every member."""
    merged: list[FieldProblem] = []
    unknown: dict[FieldPath, FieldProblem] = {}
    for problem in problems:
        if not problem.allowed:
            merged.append(problem)
            continue
        if problem.path in unknown:
            seen = unknown[problem.path]
            allowed = tuple(dict.fromkeys((*seen.allowed, *problem.allowed)))
            unknown[problem.path] = FieldProblem(
                problem.path, unknown_key(problem.path[-1], allowed), at_key=True, allowed=allowed
            )
        else:
            unknown[problem.path] = problem
            merged.append(problem)
    return [unknown.get(p.path, p) if p.allowed else p for p in merged]


def _unknown_beside_tag(details: ErrorDetails, walk: _Walk) -> list[FieldProblem]:
    """A tagged union without its tag stops there: report the mapping's unknown keys too (``acton`` for
    ``action``), which may well be why the tag is missing."""
    if details["type"] not in {"union_tag_not_found", "union_tag_invalid"}:
        return []
    value = details.get("input")
    tag_key = str((details.get("ctx") or {}).get("discriminator", walk.discriminator or "")).strip("'")
    if not isinstance(value, Mapping) or not tag_key:
        return []
    members = _union_members(walk.reached) or [walk.reached]
    allowed = tuple(dict.fromkeys(key for member in members for key in _keys_of(member)))
    if not allowed:
        return []
    return [
        FieldProblem((*walk.path, key), unknown_key(key, allowed), at_key=True, allowed=allowed)
        for key in value
        if isinstance(key, str) and key not in allowed
    ]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'action'?)`` when ``word`` is a near miss of one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: Hashable, allowed: Iterable[str]) -> str:
    """``unknown key 'acton' (did you mean 'action'?); expected one of: ...``: the one wording of a stray key."""
    choices = list(allowed)
    hint = did_you_mean(key, choices) if isinstance(key, str) else ""
    return f"unknown key {key!r}{hint}" + (f"; expected one of: {', '.join(choices)}" if choices else "")


def _about_key(details: ErrorDetails) -> bool:
    return details["type"] in {"extra_forbidden", "invalid_key"}


def _message(details: ErrorDetails, walk: _Walk) -> str:
    kind, ctx, value = details["type"], details.get("ctx") or {}, details.get("input")
    last = details["loc"][-1] if details["loc"] else ""
    prefix = "invalid key: " if walk.is_key else ""
    if kind == "missing":
        return f"missing required key {last!r}"
    if kind == "extra_forbidden":
        return unknown_key(last, _keys_of(walk.owner))
    if kind == "invalid_key":
        return f"keys must be strings, got {_describe(last)}"
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag_key = str(ctx.get("discriminator", walk.discriminator or "")).strip("'")
        tags = ", ".join(_tags_of(walk.reached, tag_key))
        tag = value.get(tag_key) if isinstance(value, Mapping) else None
        if kind == "union_tag_not_found" or tag is None:
            return f"missing required key {tag_key!r}; expected one of: {tags}"
        if isinstance(tag, str):
            hint = did_you_mean(tag, _tags_of(walk.reached, tag_key))
            return f"unknown {tag_key} {tag!r}{hint}; expected one of: {tags}"
        return f"expected {tag_key} to be one of: {tags}; got {_describe(tag)}"
    if kind in {"value_error", "assertion_error"}:
        return str(details["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in {"too_short", "too_long"} and isinstance(value, list | tuple):
        size = f"at least {ctx.get('min_length')}" if kind == "too_short" else f"at most {ctx.get('max_length')}"
        return f"{prefix}expected {size} item(s), got {len(value)}"
    if kind == "literal_error":
        return f"{prefix}expected {ctx.get('expected')}, got {_describe(value)}"
    bound = next((b for b in _BOUNDS if b in ctx), None)
    if bound is not None:
        return f"{prefix}expected a number {_BOUNDS[bound]} {ctx[bound]}, got {_describe(value)}"
    if kind in _EXPECTED:
        return f"{prefix}expected {_EXPECTED[kind]}, got {_describe(value)}"
    text = str(details["msg"])
    if text.startswith("Input should be "):
        return f"{prefix}expected {text.removeprefix('Input should be ')}, got {_describe(value)}"
    return prefix + text


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


# --- walking the model's types along a loc --------------------------------------------------------------


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> _Walk:
    walk = _Walk()
    current, walk.discriminator = _strip(model)
    for segment in loc:
        walk.owner = current
        if segment == "[key]":
            walk.is_key = True
            continue
        members = _union_members(current)
        if members and walk.discriminator:
            # The tag of a tagged union is the value of a key already in the path, not a path step.
            current, walk.discriminator = _strip(_member_with_tag(members, walk.discriminator, segment))
            continue
        if members:
            if walk.union_at is None:
                walk.union_at, walk.member = walk.path, str(segment)
            named = [m for m in members if isinstance(m, type) and _names_member(str(segment), m.__name__)]
            current, walk.discriminator = _strip(named[0] if named else None)
            continue
        walk.path = (*walk.path, segment)
        current, walk.discriminator = _strip(_step(current, segment))
    walk.reached = current
    return walk


def _names_member(segment: str, name: str) -> bool:
    """pydantic names a union member by its class, wrapped when it has validators: ``function-after[f(), Step]``."""
    return segment == name or segment.endswith((f", {name}]", f"[{name}]"))


def _strip(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[X, Field(discriminator=...)]`` → (X, discriminator); ``X | None`` → X."""
    discriminator = None
    while get_origin(tp) is Annotated:
        tp, *metadata = get_args(tp)
        for item in metadata:
            if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
                discriminator = item.discriminator
    members = _union_members(tp)
    if len(members) == 1:
        return _strip(members[0])
    return tp, discriminator


def _union_members(tp: Any) -> list[Any]:
    if get_origin(tp) in {Union, types.UnionType}:
        # A member tagged for a callable discriminator (``Annotated[Step, Tag("Step")]``) is its class here.
        members = [get_args(arg)[0] if get_origin(arg) is Annotated else arg for arg in get_args(tp)]
        return [member for member in members if member is not type(None)]
    return []


def _member_with_tag(members: list[Any], discriminator: str, tag: Hashable) -> Any:
    for member in members:
        if tag in _tags_of(member, discriminator):
            return member
    return None


def _tags_of(tp: Any, discriminator: str) -> list[str]:
    """The tags a tagged union (or one member of it) accepts, in declaration order."""
    models = _union_members(tp) or [tp]
    tags: list[str] = []
    for model in models:
        if isinstance(model, type) and issubclass(model, BaseModel) and discriminator in model.model_fields:
            tags.extend(str(a) for a in get_args(model.model_fields[discriminator].annotation))
    return tags


def _step(tp: Any, segment: Hashable) -> Any:
    """The type one key or index below ``tp``; None when the types say nothing about it."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if segment in {name, info.alias}:
                return info.annotation
        return None
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _keys_of(tp: Any) -> list[str]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [info.alias or name for name, info in tp.model_fields.items()]
    return []
