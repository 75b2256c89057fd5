"""The ``prometheus`` probe kind: a PromQL instant query whose value must stay within bounds.

Plain pydantic, safe in the workflow sandbox. The probe that runs it is ``activities.probes.prometheus``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from gameday.model.base import Strict, http_url
from gameday.model.units import Duration


class PrometheusProbe(Strict):
    """``prometheus: {url: http://127.0.0.1:9090, query: 'sum(rate(errors_total[1m]))', max: 0.5}``.

    The query runs at the moment of the sample (``/api/v1/query``). Every series it returns must be within
    the bounds; a query that returns no series fails the sample (no data is not evidence of health).
    """

    url: str
    """Base URL of the Prometheus HTTP API, e.g. ``http://127.0.0.1:9090`` (a path prefix is kept)."""
    query: str = Field(min_length=1)
    """A PromQL expression giving an instant vector or a scalar (wrap a range selector in e.g. ``rate()``)."""
    max: float | None = None
    """The value must be at most this."""
    min: float | None = None
    """The value must be at least this."""
    equals: float | None = None
    """The value must be this, give or take ``within``."""
    within: float = Field(default=0.0, ge=0)
    """Allowed absolute difference from ``equals``."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with the query (e.g. ``Authorization``, or ``X-Scope-OrgID`` for a multi-tenant store)."""
    timeout: Duration = timedelta(seconds=2)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _bounds(self) -> PrometheusProbe:
        if self.max is None and self.min is None and self.equals is None:
            raise ValueError("a prometheus probe needs a bound: max, min or equals")
        if self.equals is not None and (self.max is not None or self.min is not None):
            raise ValueError("give either 'equals' or 'min'/'max', not both")
        if self.within and self.equals is None:
            raise ValueError("'within' applies to 'equals' only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is larger than 'max': no value can pass")
        return self

    def breach(self, value: float) -> str | None:
        """Why ``value`` is out of bounds, in words; ``None`` when it is within them (NaN never is)."""
        if value != value:  # NaN compares false with everything, so it would pass every bound unnoticed
            return "value is NaN"
        if self.equals is not None and abs(value - self.equals) > self.within:
            margin = f" ± {self.within:g}" if self.within else ""
            return f"value {value:g} is not {self.equals:g}{margin}"
        if self.max is not None and value > self.max:
            return f"value {value:g} > max {self.max:g}"
        if self.min is not None and value < self.min:
            return f"value {value:g} < min {self.min:g}"
        return None
