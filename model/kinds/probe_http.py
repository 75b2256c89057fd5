"""The ``http`` probe kind: a request whose status (and body) says whether the service is healthy.

Sampler: ``activities/probes/http.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from gameday.model.base import Strict, http_url
from gameday.model.kinds.base import ProbeKindSpec
from gameday.model.units import Duration


class HttpProbe(Strict):
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    status: int | list[int] = 200
    body_contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=2)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @property
    def statuses(self) -> list[int]:
        return [self.status] if isinstance(self.status, int) else list(self.status)


def timeout(spec: HttpProbe) -> timedelta:
    return spec.timeout


KIND = ProbeKindSpec(key="http", model=HttpProbe, sampler="gameday.activities.probes.http", timeout=timeout)
