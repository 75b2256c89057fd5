"""HTTP probe: does ``method url`` answer with an expected status (and body) within the timeout?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx

from gameday.activities import secrets
from gameday.activities.probes.judge import Sample
from gameday.activities.probes.tcp import connection_problem, timed_out
from gameday.model.drill import HttpProbe


async def take_sample(spec: HttpProbe, client: httpx.AsyncClient) -> Sample:
    """Send one request and check its status and body.

    Redirects are followed only if ``client`` was built to follow them (httpx's default is not to): a
    health endpoint that starts redirecting has changed, and the probe should say so.

    Args:
        spec: The probe's ``http`` section.
        client: A client shared by the samples of an activity, so connections are pooled.

    Returns:
        A sample whose latency covers the whole exchange, body included; an error answer, a timeout or a
        refused connection is a failed sample, never an exception.
    """
    seconds = spec.timeout.total_seconds()
    started = time.perf_counter()
    try:
        resolved = secrets.resolve(spec.headers)
    except secrets.SecretMissing as exc:
        return Sample(ok=False, latency=0.0, problem=str(exc))
    sample = await _send(spec, client, resolved.headers, seconds, started)
    # A problem may quote what the server or the transport said: the secrets sent never leave the probe.
    return replace(sample, problem=resolved.scrub(sample.problem)) if sample.problem else sample


async def _send(
    spec: HttpProbe, client: httpx.AsyncClient, headers: dict[str, str], seconds: float, started: float
) -> Sample:
    try:
        # httpx applies its timeout to each phase (connect, read…); the outer one bounds the whole request.
        async with asyncio.timeout(seconds):
            response = await client.request(spec.method, spec.url, headers=headers, timeout=seconds)
    except (TimeoutError, httpx.TimeoutException):
        return Sample(ok=False, latency=time.perf_counter() - started, problem=timed_out(spec.timeout))
    except httpx.TransportError as exc:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=_transport_problem(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=f"request failed: {exc}")
    latency = time.perf_counter() - started

    if response.status_code not in spec.statuses:
        expected = " or ".join(str(s) for s in spec.statuses)
        return Sample(ok=False, latency=latency, problem=f"status {response.status_code} (expected {expected})")
    if spec.body_contains is not None and spec.body_contains not in response.text:
        return Sample(ok=False, latency=latency, problem=f"body does not contain {spec.body_contains!r}")
    return Sample(ok=True, latency=latency)


def _transport_problem(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return connection_problem(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}"
    return f"request failed: {exc}"
