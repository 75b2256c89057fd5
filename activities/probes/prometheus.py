"""Prometheus probe: run a PromQL instant query and check every value it returns against the bounds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx

from gameday.activities import secrets
from gameday.activities.probes.judge import Sample
from gameday.activities.probes.tcp import connection_problem, timed_out
from gameday.model.probe_prometheus import PrometheusProbe

API_PATH = "/api/v1/query"
MAX_SERIES_NAMED = 3
"""Series named in one sample's problem: enough to act on, short enough for a report line."""


class AnswerError(Exception):
    """The answer is not a usable instant-query result; the message says why, in words."""


async def take_sample(spec: PrometheusProbe, client: httpx.AsyncClient) -> Sample:
    """Run the query once and check its values.

    The query goes as a form POST, as the Prometheus API documents for long queries, with the probe's timeout
    passed on so that Prometheus gives up on it too.

    Args:
        spec: The probe's ``prometheus`` section.
        client: A client shared by the samples of an activity, so connections are pooled.

    Returns:
        A sample whose latency is the query's round trip; an unreachable server, a failed query, no data or
        a value out of bounds is a failed sample, never an exception.
    """
    seconds = spec.timeout.total_seconds()
    form = {"query": spec.query, "timeout": f"{seconds:g}s"}
    started = time.perf_counter()
    try:
        resolved = secrets.resolve(spec.headers)
    except secrets.SecretMissing as exc:
        return Sample(ok=False, latency=0.0, problem=str(exc))
    sample = await _query(spec, client, form, resolved.headers, seconds, started)
    # A problem quotes the server's own error text, which may echo the request's headers: scrub what was sent.
    return replace(sample, problem=resolved.scrub(sample.problem)) if sample.problem else sample


async def _query(
    spec: PrometheusProbe,
    client: httpx.AsyncClient,
    form: dict[str, str],
    headers: dict[str, str],
    seconds: float,
    started: float,
) -> Sample:
    try:
        async with asyncio.timeout(seconds):
            response = await client.post(spec.url + API_PATH, data=form, headers=headers, timeout=seconds)
    except (TimeoutError, httpx.TimeoutException):
        return Sample(ok=False, latency=time.perf_counter() - started, problem=timed_out(spec.timeout))
    except httpx.ConnectError as exc:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=connection_problem(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=f"request failed: {exc}")
    latency = time.perf_counter() - started

    try:
        values = series_values(response)
    except AnswerError as exc:
        return Sample(ok=False, latency=latency, problem=str(exc))
    if not values:
        return Sample(ok=False, latency=latency, problem=f"query returned no data: {spec.query}")
    breaches = [f"{series}: {why}" for series, value in values if (why := spec.breach(value)) is not None]
    if breaches:
        more = len(breaches) - MAX_SERIES_NAMED
        problem = "; ".join(breaches[:MAX_SERIES_NAMED]) + (f" (and {more} more series)" if more > 0 else "")
        return Sample(ok=False, latency=latency, problem=problem)
    return Sample(ok=True, latency=latency)


def series_values(response: httpx.Response) -> list[tuple[str, float]]:
    """Each series of an instant-query answer as (``name{label="value"}``, value); a scalar is ``scalar``.

    Raises:
        AnswerError: for an error answer, a result that is not an instant vector or scalar, or a body that is
            not the Prometheus API's.
    """
    try:
        body: Any = response.json()
    except ValueError:
        raise AnswerError(f"status {response.status_code}: not a Prometheus API answer") from None
    if not isinstance(body, dict):
        raise AnswerError("not a Prometheus API answer")
    if body.get("status") != "success":
        error_type, error = body.get("errorType", "error"), body.get("error", f"status {response.status_code}")
        raise AnswerError(f"query failed ({error_type}): {error}")
    data: Any = body.get("data") or {}
    kind: Any = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "scalar":
            return [("scalar", float(result[1]))]
        if kind == "vector":
            return [(series_name(item.get("metric", {})), float(item["value"][1])) for item in result]
    except (TypeError, KeyError, IndexError, ValueError):
        raise AnswerError(f"malformed {kind} result") from None
    if kind == "matrix":
        raise AnswerError("the query returns a range vector; wrap it in a function such as rate() or max_over_time()")
    raise AnswerError(f"the query returns a {kind}; expected an instant vector or a scalar")


def series_name(labels: dict[str, str]) -> str:
    """``up{job="api"}`` from a series' labels, as PromQL writes it; ``{}`` for an aggregate without labels."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()) if key != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name
