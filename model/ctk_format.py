"""Chaos Toolkit's experiment format, typed: the parts gameday acts on (issue 16).

An experiment file (JSON or YAML) is read by :mod:`gameday.model.ctk`, which validates it against these models
and translates it into a drill. The models are also what the ``chaostoolkit`` fault and probe kinds carry to the
worker, so they hold only what the file says: configuration values read from the environment and every secret stay
references (:class:`EnvRef`), resolved by the worker that runs the activity (``activities/ctk/``), never in the
workflow's input, history, SQL or reports.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

JsonValue = Any
"""A JSON value as the experiment file wrote it (arguments, tolerances, inline configuration)."""


class _Ctk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EnvRef(_Ctk):
    """``{type: env, key: NAME, default: ...}``: a value read from the worker's environment when an activity runs."""

    type: Literal["env"]
    key: str
    default: JsonValue = None


class Provider(_Ctk):
    """How an activity runs: ``process``, ``http`` or ``python`` (Chaos Toolkit's three built-in providers).

    Attributes:
        type: the provider.
        path: ``process``: the executable (looked up on the worker's ``PATH``).
        arguments: ``process``: a string (run through the shell, after the path) or a list (one argument each);
            ``http``: the query (GET) or the body; ``python``: the function's keyword arguments.
        timeout: seconds (``http``: also ``[connect, read]``); none means no limit in Chaos Toolkit, and gameday's
            :data:`DEFAULT_TIMEOUT` here.
        url, method, headers, verify_tls, expected_status, max_retries: ``http``.
        module, func, secrets: ``python``; ``secrets`` names the experiment's secret groups passed to the function.
    """

    type: Literal["process", "http", "python"]
    path: str | None = None
    arguments: JsonValue = None
    timeout: float | list[float] | None = None
    url: str | None = None
    method: str = "GET"
    headers: dict[str, str] | None = None
    verify_tls: bool = True
    expected_status: int | list[int] | None = None
    max_retries: int = 0
    module: str | None = None
    func: str | None = None
    secrets: list[str] | None = None

    @field_validator("timeout")
    @classmethod
    def _finite_positive(cls, timeout: float | list[float] | None) -> float | list[float] | None:
        if timeout is None:
            return None
        parts = timeout if isinstance(timeout, list) else [timeout]
        if isinstance(timeout, list) and len(timeout) != 2:
            raise ValueError("a list timeout is [connect, read], two numbers of seconds")
        if not all(math.isfinite(p) and 0 < p <= MAX_TIMEOUT for p in parts):
            raise ValueError(f"a timeout is seconds, more than 0 and at most {MAX_TIMEOUT:g}; got {timeout!r}")
        return timeout

    @model_validator(mode="after")
    def _needs_its_keys(self) -> Provider:
        needed = {"process": ("path",), "http": ("url",), "python": ("module", "func")}[self.type]
        missing = [key for key in needed if getattr(self, key) is None]
        if missing:
            raise ValueError(f"a {self.type} provider needs {' and '.join(missing)}")
        return self

    @property
    def time_limit(self) -> float:
        """The longest one call may take, in seconds."""
        if isinstance(self.timeout, list):
            return float(sum(self.timeout))
        return float(self.timeout) if self.timeout is not None else DEFAULT_TIMEOUT


MAX_TIMEOUT = 86_400.0
"""An activity's longest ``timeout``: a drill's longest ``max_duration`` (24 hours)."""
DEFAULT_TIMEOUT = 60.0
"""Seconds an activity with no ``timeout`` may take: Chaos Toolkit waits forever, a durable run cannot."""


class Pauses(_Ctk):
    before: float = Field(default=0.0, ge=0, le=3600)
    after: float = Field(default=0.0, ge=0, le=3600)


class Activity(_Ctk):
    """An action or a probe, as the method, the rollbacks or the hypothesis list it."""

    type: Literal["action", "probe"]
    name: str
    provider: Provider
    tolerance: JsonValue = None
    pauses: Pauses | None = None
    background: bool = False
    controls: list[JsonValue] | None = None
    dry: JsonValue = None
    """Chaos Toolkit's per-activity dry mode: accepted, not acted on (gameday runs every activity)."""
    ref: None = None

    @property
    def budget(self) -> float:
        """Seconds this activity may take, pauses included."""
        pauses = self.pauses or Pauses()
        return self.provider.time_limit + pauses.before + pauses.after


class Ref(_Ctk):
    """``{ref: name}``: the method activity of that name, run again (a rollback undoing what an action did)."""

    ref: str


class Hypothesis(_Ctk):
    title: str = ""
    probes: list[Activity] = Field(default_factory=list)
    controls: list[JsonValue] | None = None

    @field_validator("probes")
    @classmethod
    def _probes_have_tolerances(cls, probes: list[Activity]) -> list[Activity]:
        for probe in probes:
            if probe.tolerance is None:
                raise ValueError(f"hypothesis probe {probe.name!r} needs a tolerance")
            tolerance = probe.tolerance
            if isinstance(tolerance, dict) and tolerance.get("type") == "probe":
                # Built into an activity by the sampler when the hypothesis runs: a bad one is said here, located.
                spec = {k: v for k, v in tolerance.items() if k != "type"}
                try:
                    Activity.model_validate({"type": "probe", **spec})
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(part) for part in first["loc"])
                    raise ValueError(f"the tolerance of {probe.name!r}: {where}: {first['msg']}") from exc
        return probes


Secrets = dict[str, dict[str, EnvRef]]
"""Secret groups → name → where the worker reads it. Inline secret values are refused: they would enter history."""


class Experiment(_Ctk):
    """The keys of a Chaos Toolkit experiment that gameday acts on; the loader lists the others as not acted on."""

    title: str
    description: str
    """Required, as chaoslib requires it."""
    tags: list[str] = Field(default_factory=list)
    configuration: dict[str, JsonValue] = Field(default_factory=dict)
    secrets: Secrets = Field(default_factory=dict)
    steady_state_hypothesis: Hypothesis | None = Field(default=None, alias="steady-state-hypothesis")
    method: list[Activity | Ref] = Field(min_length=1)
    rollbacks: list[Activity | Ref] = Field(default_factory=list)
    controls: list[JsonValue] | None = None

    @field_validator("configuration")
    @classmethod
    def _env_forms(cls, configuration: dict[str, JsonValue]) -> dict[str, JsonValue]:
        for name, value in configuration.items():
            if isinstance(value, dict) and "type" in value:
                if value.get("type") != "env":
                    raise ValueError(f"configuration {name!r}: only type 'env' is supported, got {value['type']!r}")
                EnvRef.model_validate(value)
        return configuration


class Context(_Ctk):
    """What every activity of one experiment needs to run: its configuration and secrets, as references.

    Attributes:
        configuration: name → inline value or ``{type: env, key, default}``.
        secrets: group → name → env reference.
    """

    configuration: dict[str, JsonValue] = Field(default_factory=dict)
    secrets: Secrets = Field(default_factory=dict)
