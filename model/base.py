"""The bases every model of gameday shares: one definition, imported by each model module (issue 13).

* :class:`Strict`: what a person writes (drill and game-day files, notify, traffic, probes): unknown keys are
  errors, values are immutable once loaded.
* :class:`Record`: what activities receive and return, what the workflow records: unknown keys are errors.
* :func:`http_url`: the one URL check (``http://`` or ``https://``) of every URL a file names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every file model: unknown keys are errors; values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(BaseModel):
    """Activity arguments and results, and what the workflow records: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def http_url(value: str) -> str:
    """``value`` when it is an ``http://`` or ``https://`` URL; a ValueError (a validation error) otherwise."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value
