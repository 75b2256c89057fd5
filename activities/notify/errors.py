"""How a failed notification is reported: ``ApplicationError`` types, and text scrubbed of the worker's secrets.

Failure types, as the workflow sees them in ``ActivityError.cause``::

    NotifyUnreachable   (retryable)      no answer: connection refused, timeout, TLS
    NotifyRateLimited   (retryable)      HTTP 429 beyond what the client waits for itself; the next attempt
                                         is delayed by the server's Retry-After (``next_retry_delay``)
    NotifyUnavailable   (retryable)      5xx, or a Slack error that may pass (``internal_error``…)
    NotifyRejected      (non-retryable)  the request can never succeed as it is: bad token, unknown channel,
                                         webhook gone; retrying would only repeat it

Errors from slack_sdk, aiohttp and httpx can carry the request (a URL with a webhook secret in its path, a
header): messages are built from the error's type and the server's error code only, every message goes through
:func:`scrub`, and errors are raised ``from None`` so no cause with its own text reaches Temporal history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

BENIGN = ApplicationErrorCategory.BENIGN
"""Every notification failure is benign for the worker: the SDK logs it at DEBUG, not as a warning with a traceback
per attempt; the workflow says once that a channel fails, and the run's ``notify`` step counts what was lost."""

UNREACHABLE = "NotifyUnreachable"
RATE_LIMITED = "NotifyRateLimited"
UNAVAILABLE = "NotifyUnavailable"
REJECTED = "NotifyRejected"

MASK = "[secret]"
SECRET_PART_MIN = 8
"""Path parts this long may be keys (``T0000/B0000/XXXXXXXX``); shorter ones (``api``, ``hooks``) stay readable."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by a mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def url_secrets(url: str) -> tuple[str, ...]:
    """What to hide of a webhook URL: the URL, and each path or query part long enough to be a key."""
    parts = urlsplit(url)
    pieces = [p for p in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(p) >= SECRET_PART_MIN]
    return (url, *pieces)


def unreachable(what: str, err: BaseException, secrets: Iterable[str]) -> ApplicationError:
    text = scrub(f"{what} unreachable: {type(err).__name__}", secrets)
    return ApplicationError(text, type=UNREACHABLE, category=BENIGN)


def rate_limited(what: str, retry_after: float | None, secrets: Iterable[str]) -> ApplicationError:
    delay = timedelta(seconds=retry_after) if retry_after else None
    after = f", retry after {retry_after:g}s" if retry_after else ""
    text = scrub(f"{what} rate limited{after}", secrets)
    return ApplicationError(text, type=RATE_LIMITED, next_retry_delay=delay, category=BENIGN)


def answered(what: str, status: int, code: str, secrets: Iterable[str], *, permanent: bool) -> ApplicationError:
    """An answer that was not a success: ``permanent`` ones are not retried."""
    text = scrub(f"{what} answered {status}" + (f": {code}" if code else ""), secrets)
    if permanent:
        return ApplicationError(text, type=REJECTED, non_retryable=True, category=BENIGN)
    return ApplicationError(text, type=UNAVAILABLE, category=BENIGN)


def retry_after(headers: object) -> float | None:
    """Seconds from a ``Retry-After`` header (case-insensitive mapping, values str or list), if any."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("Retry-After") or get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
