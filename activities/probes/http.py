"""HTTP probe: does ``method url`` answer with an expected status (and body) within the timeout?"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import jmespath.exceptions

from gameday.activities import secrets
from gameday.activities.probes.judge import Sample
from gameday.activities.probes.tcp import connection_problem, timed_out
from gameday.model.drill import HttpProbe
from gameday.model.kinds.probe_http import BodyJson, comparison, compiled_path, compiled_regex
from gameday.model.watch import value_text

MAX_JSON_BODY = 1024 * 1024
"""Bytes of a response ``body_json`` or ``record`` parses: a larger body is a failed sample, never a parse."""

VALUE_CLIP = 80
"""Characters of a JSON value quoted in a problem text."""


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
    # A problem or a recorded value may quote what the server or the transport said: the secrets sent never leave
    # the probe. Values quoted from the body are scrubbed before they are clipped (a cut through a secret would
    # leave its head unmasked); the whole problem once more after.
    sample = await _send(spec, client, resolved.headers, seconds, started, resolved.scrub)
    return replace(sample, problem=resolved.scrub(sample.problem)) if sample.problem else sample


async def _send(
    spec: HttpProbe,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    seconds: float,
    started: float,
    scrub: Callable[[str], str],
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
    sample = _judged(spec, response, latency, scrub)
    if spec.record is None:
        return sample
    return replace(sample, value=recorded(spec.record, response.content, scrub))


def _judged(spec: HttpProbe, response: httpx.Response, latency: float, scrub: Callable[[str], str]) -> Sample:
    if response.status_code not in spec.statuses:
        expected = " or ".join(str(s) for s in spec.statuses)
        return Sample(ok=False, latency=latency, problem=f"status {response.status_code} (expected {expected})")
    if spec.body_contains is not None and spec.body_contains not in response.text:
        return Sample(ok=False, latency=latency, problem=f"body does not contain {spec.body_contains!r}")
    if spec.body_json is not None:
        problem = judge_json(spec.body_json, response.content, scrub)
        if problem is not None:
            return Sample(ok=False, latency=latency, problem=problem)
    return Sample(ok=True, latency=latency)


def recorded(path: str, content: bytes, scrub: Callable[[str], str] | None = None) -> str | None:
    """The JSON value at ``path`` in a response body, as text (``model.watch.value_text``); ``None`` when the body
    is not JSON (or too large) or has no value there. Kept with the sample whether it held or not."""
    try:
        value = compiled_path(path).search(parse_body(content))
    except (ValueError, jmespath.exceptions.JMESPathError):
        return None
    return None if value is None else value_text(value, scrub)


def parse_body(content: bytes) -> Any:
    """The JSON document of a response body; a ``ValueError`` in words when it is too large or not JSON."""
    if len(content) > MAX_JSON_BODY:
        raise ValueError(f"body is larger than {MAX_JSON_BODY // 1024} KiB, not parsed as JSON")
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body is not JSON") from None


def judge_json(test: BodyJson, content: bytes, scrub: Callable[[str], str] | None = None) -> str | None:
    """``None`` when the JSON value at ``test.path`` passes ``test``, else the problem in words (the value quoted
    ``scrub``-bed before it is clipped)."""
    try:
        document = parse_body(content)
    except ValueError as error:
        return str(error)
    try:
        value = compiled_path(test.path).search(document)
    except jmespath.exceptions.JMESPathError as error:  # a function given the wrong type: length(a_number)
        return f"{test.path}: {str(error).strip().splitlines()[0]}"
    if value is None:
        return f"{test.path}: no value"
    shown = quote(value, scrub)
    if test.equals is not None:
        return None if same(value, test.equals) else f"{test.path} is {shown}, expected {quote(test.equals)}"
    if test.in_ is not None:
        if any(same(value, wanted) for wanted in test.in_):
            return None
        return f"{test.path} is {shown}, expected one of {', '.join(quote(w) for w in test.in_)}"
    if test.matches is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        if compiled_regex(test.matches).search(text):
            return None
        return f"{test.path} is {shown}, expected to match {test.matches!r}"
    assert test.compare is not None
    op, bound = comparison(test.compare)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{test.path} is {shown}, expected a number {op} {bound:g}"
    held = {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]
    return None if held else f"{test.path} is {shown}, expected {op} {bound:g}"


def same(value: Any, wanted: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    return isinstance(value, bool) == isinstance(wanted, bool) and value == wanted


def quote(value: Any, scrub: Callable[[str], str] | None = None) -> str:
    """A JSON value in a problem text: strings quoted, the rest as JSON; ``scrub``-bed, then clipped to
    ``VALUE_CLIP``."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = text if scrub is None else scrub(text)
    return text if len(text) <= VALUE_CLIP else text[: VALUE_CLIP - 1] + "…"


def _transport_problem(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return connection_problem(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}"
    return f"request failed: {exc}"
