"""The ``http`` target kind: a service; a fault calls one endpoint, its revert another.

Faults: ``activities/faults/http.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from gameday.model.base import Strict, http_url
from gameday.model.kinds.base import FaultBase, TargetKindSpec, timed
from gameday.model.units import Duration


class HttpTarget(Strict):
    """An HTTP service; faults call paths under ``base_url`` only."""

    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")


class HttpRequest(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = "/"
    json_body: dict[str, object] | list[object] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout: Duration = timedelta(seconds=10)

    model_config = ConfigDict(populate_by_name=True)  # frozen, no extra keys: Strict

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if "://" in value:
            raise ValueError("expected a path under the target's base_url, not a full URL")
        return value if value.startswith("/") else "/" + value


class CallFault(FaultBase):
    """Call an endpoint of an ``http`` target; ``revert`` is the request that undoes it."""

    action: Literal["call"]
    request: HttpRequest
    revert: HttpRequest

    def apply_budget(self) -> timedelta:
        return timed(self.request.timeout)


def describe(spec: HttpTarget) -> str:
    return f"http {spec.base_url}"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    assert isinstance(fault, CallFault)
    return f"{fault.request.method} {fault.request.path}", f"{fault.revert.method} {fault.revert.path}"


def lock_key(spec: HttpTarget) -> str:
    return f"http:{spec.base_url}"


KIND = TargetKindSpec(
    key="http",
    model=HttpTarget,
    faults=(CallFault,),
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.http",
)
