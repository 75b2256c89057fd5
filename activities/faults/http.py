"""Faults on an ``http`` target: ``call`` one endpoint; the revert calls another.

Requests only ever go to ``base_url`` + a path: the drill model guarantees the path starts with ``/``, so it
cannot change the host, and redirects are not followed, so an answer cannot send us elsewhere.
"""

from __future__ import annotations

import httpx

from gameday.activities import secrets
from gameday.activities.faults import narrow
from gameday.activities.faults.command import OUTPUT_LIMIT
from gameday.activities.faults.errors import ApplyError, FaultError, RevertError
from gameday.model.drill import CallFault, HttpRequest, HttpTarget
from gameday.model.records import FaultInput, FaultRecord


def _narrow(inp: FaultInput) -> tuple[HttpTarget, CallFault]:
    return narrow(inp, HttpTarget, CallFault)


async def call(target: HttpTarget, request: HttpRequest, error: type[FaultError]) -> str:
    """Send ``request`` to ``target`` and check the answer's status.

    Args:
        target: the declared HTTP target (base URL and headers).
        request: the method, path, JSON body, headers, expected statuses and timeout.
        error: the exception raised on failure (:class:`ApplyError` or :class:`RevertError`).

    Returns:
        ``"<status> <body>"``, the body cut to :data:`OUTPUT_LIMIT` characters, every secret the request's
        headers carried masked (``secrets.MASK``).

    Raises:
        FaultError: of the class given, on a transport error or a status not in ``expect_status``.
    """
    url = target.base_url + request.path
    try:
        resolved = secrets.resolve({**target.headers, **request.headers})  # the request's own headers win
    except secrets.SecretMissing as err:
        raise error(f"{request.method} {url}: {err}") from err
    try:
        async with httpx.AsyncClient(timeout=request.timeout.total_seconds(), follow_redirects=False) as client:
            response = await client.request(request.method, url, json=request.json_body, headers=resolved.headers)
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        # Not chained: the cause's own message would reach history unscrubbed (h11 quotes a bad header value).
        raise error(resolved.scrub(f"{request.method} {url}: {type(err).__name__}: {err}")) from None
    # An answer may echo the request's headers: the secrets they carried never leave this function. Masked before
    # the cut, so a secret echoed across the limit is not kept in part.
    answer = f"{response.status_code} {resolved.scrub(response.text)[:OUTPUT_LIMIT]}".rstrip()
    if response.status_code not in request.expect_status:
        expected = ", ".join(map(str, request.expect_status))
        raise error(f"{request.method} {url} answered {answer} (expected {expected})")
    return answer


async def capture(inp: FaultInput) -> dict[str, str]:
    """Nothing to read: the service keeps its own state; the revert request always runs, whatever the apply did."""
    return {}


async def apply(inp: FaultInput) -> FaultRecord:
    """Send the fault's ``request``; a transport error or an unexpected status is an :class:`ApplyError`."""
    target, fault = _narrow(inp)
    answer = await call(target, fault.request, ApplyError)
    changed = {"called": f"{fault.request.method} {fault.request.path}", "status": answer.split(" ", 1)[0]}
    return inp.record.model_copy(update={"changed": changed, "output": answer})


async def revert(inp: FaultInput) -> FaultRecord:
    """Send the fault's ``revert`` request; a transport error or an unexpected status is a :class:`RevertError`.

    The drill format requires the revert endpoint to be idempotent, and harmless when apply never ran.
    """
    target, fault = _narrow(inp)
    answer = await call(target, fault.revert, RevertError)
    return inp.record.model_copy(update={"output": answer})
