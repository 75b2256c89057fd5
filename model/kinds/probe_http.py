"""The ``http`` probe kind: a request whose status (and body) says whether the service is healthy.

Sampler: ``activities/probes/http.py``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Literal

import jmespath
import jmespath.exceptions
import jmespath.parser
from pydantic import Field, field_validator, model_validator

from gameday.model.base import Strict, http_url
from gameday.model.kinds.base import ProbeKindSpec
from gameday.model.units import Comparison, Duration, split_comparison

JsonScalar = str | int | float | bool
"""A value ``equals`` and ``in`` may name: JSON's scalars (``in: [null]`` is written with a list)."""


@lru_cache(maxsize=256)
def compiled_path(path: str) -> jmespath.parser.ParsedResult:
    """``path`` compiled once per process; the loader has already refused a path JMESPath cannot parse."""
    return jmespath.compile(path)


@lru_cache(maxsize=256)
def compiled_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _jmespath(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a JMESPath expression like breaker.state, got an empty text")
    try:
        compiled_path(value)
    except jmespath.exceptions.JMESPathError as error:
        raise ValueError(f"not a JMESPath expression: {value!r} ({_first_line(error)})") from None
    return value


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class BodyJson(Strict):
    """An assertion on one value of a JSON response: ``{path: breaker.state, equals: CLOSED}``."""

    path: str
    equals: JsonScalar | None = None
    in_: list[JsonScalar | None] | None = Field(default=None, alias="in")
    matches: str | None = None
    compare: str | None = None

    model_config = Strict.model_config | {"populate_by_name": True}

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _jmespath(value)

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled_regex(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {value!r} ({error})") from None
        return value

    @field_validator("compare")
    @classmethod
    def _comparison(cls, value: str | None) -> str | None:
        if value is not None:
            comparison(value)
        return value

    @model_validator(mode="after")
    def _one_test(self) -> BodyJson:
        given = [
            k
            for k, v in (
                ("equals", self.equals),
                ("in", self.in_),
                ("matches", self.matches),
                ("compare", self.compare),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"body_json needs exactly one of equals, in, matches, compare; got {', '.join(given) or 'none'}"
            )
        return self


def comparison(text: str) -> tuple[Comparison, float]:
    """``"< 5"`` → ``("<", 5.0)``; anything else is a ``ValueError`` in the drill's words."""
    op, rest = split_comparison(text)
    try:
        if op is None:
            raise ValueError
        return op, float(rest)
    except (TypeError, ValueError):
        raise ValueError(
            f"expected a comparison like '< 5' or '>= 2' (<, <=, >, >= and a number), got {text!r}"
        ) from None


class HttpProbe(Strict):
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    status: int | list[int] = 200
    body_contains: str | None = None
    body_json: BodyJson | None = None
    record: str | None = None
    """A JMESPath whose value in the JSON response is kept with every sample, judged or not (``breaker.state``)."""
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=2)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("record")
    @classmethod
    def _record_path(cls, value: str | None) -> str | None:
        return None if value is None else _jmespath(value)

    @property
    def statuses(self) -> list[int]:
        return [self.status] if isinstance(self.status, int) else list(self.status)


def timeout(spec: HttpProbe) -> timedelta:
    return spec.timeout


KIND = ProbeKindSpec(key="http", model=HttpProbe, sampler="gameday.activities.probes.http", timeout=timeout)
