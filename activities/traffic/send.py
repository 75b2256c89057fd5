"""One request of the traffic, and the outcome class it falls in.

The traffic uses aiohttp rather than httpx (which the probes use): on this project's 2-core machine httpx
reached ~1.8k requests/s on one core at best, and ~0.6k with 100 connections, where aiohttp reached ~15k
(numbers and command in docs/BENCHMARKS.md). A probe sends one request a second; traffic sends thousands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from enum import StrEnum

import aiohttp
from yarl import URL

from gameday.activities import secrets
from gameday.model.data_loss import ID
from gameday.model.traffic import Method, ResolvedEndpoint

USER_AGENT = "gameday-traffic"


class Outcome(StrEnum):
    """How a request ended; each value names its counter in :class:`~model.traffic.Outcomes`."""

    OK = "ok"
    STATUS_4XX = "status_4xx"
    STATUS_5XX = "status_5xx"
    TIMEOUT = "timeouts"
    CONNECTION_ERROR = "connection_errors"


def outcome_of_status(status: int) -> Outcome:
    """Below 400 is an answer the client can use (redirects are not followed); then 4xx, and 5xx or worse."""
    if status < 400:
        return Outcome.OK
    if status < 500:
        return Outcome.STATUS_4XX
    return Outcome.STATUS_5XX


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """An endpoint in the form the hot path wants: the body encoded once, the timeout in seconds."""

    method: Method
    url: URL
    headers: dict[str, str] | None
    body: bytes | None
    timeout: float
    weight: float
    template: tuple[str, bytes | None] | None = None
    """The URL and body as written when either holds ``{{id}}``: :meth:`with_id` fills them in per request."""

    @property
    def writes(self) -> bool:
        """Each request gets an id (its 2xx answers are acknowledged writes)."""
        return self.template is not None

    def with_id(self, ident: int) -> PreparedRequest:
        """This request with ``{{id}}`` replaced by ``ident`` in its URL and body."""
        assert self.template is not None
        url, body = self.template
        text = str(ident)
        filled = None if body is None else body.replace(ID.encode(), text.encode())
        return replace(self, url=URL(url.replace(ID, text)), body=filled, template=None)

    @classmethod
    def of(cls, endpoint: ResolvedEndpoint) -> PreparedRequest:
        body = None if endpoint.body is None else endpoint.body.encode()
        # Parsed once here rather than by aiohttp on every request: a measurable share of its per-request cost.
        url = URL(endpoint.url)
        # Nothing the traffic keeps quotes an answer or a header: only counts and latencies leave it.
        headers = secrets.resolve(endpoint.headers).headers or None
        template = (endpoint.url, body) if ID in endpoint.url or (body is not None and ID.encode() in body) else None
        return cls(endpoint.method, url, headers, body, endpoint.timeout.total_seconds(), endpoint.weight, template)


@asynccontextmanager
async def open_session(max_in_flight: int) -> AsyncIterator[aiohttp.ClientSession]:
    """A session for the whole run: kept-alive connections, at most ``max_in_flight`` of them.

    aiohttp's own timeouts are off: :func:`send` bounds each request from its intended send time instead.
    Cookies are dropped, so one request's ``Set-Cookie`` cannot change what the next one measures; bodies
    are read in full but not decompressed: the traffic measures them, it does not use them.
    """
    connector = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        headers={"User-Agent": USER_AGENT},
    ) as session:
        yield session


async def send(session: aiohttp.ClientSession, request: PreparedRequest, deadline: float) -> tuple[Outcome, int]:
    """Send ``request`` and read the whole answer, giving up at ``deadline``.

    Args:
        session: From :func:`open_session`.
        request: What to send.
        deadline: ``time.monotonic()`` instant (the intended send time plus the timeout); waiting for a free
            connection counts against it too.

    Returns:
        The outcome and the status (0 without an answer); a failure is an outcome, never an exception
        (cancellation still propagates).
    """
    try:
        async with asyncio.timeout(deadline - time.monotonic()):
            async with session.request(
                request.method, request.url, headers=request.headers, data=request.body, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
    except TimeoutError:  # also aiohttp's ServerTimeoutError, a subclass
        return Outcome.TIMEOUT, 0
    except (aiohttp.ClientError, OSError):
        # Refused, reset, closed before answering, or an answer that is not HTTP: the target failed to answer.
        return Outcome.CONNECTION_ERROR, 0
    return outcome_of_status(status), status
