"""TCP probe: can a connection be opened to ``host:port`` within the timeout?"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta

from gameday.activities.probes.judge import Sample, in_words
from gameday.model.drill import TcpProbe


async def take_sample(spec: TcpProbe, client: object = None) -> Sample:
    """Open a connection to ``spec.host:spec.port`` and close it again.

    Args:
        spec: The probe's ``tcp`` section.
        client: unused: every sampler is called with the activity's shared HTTP client.

    Returns:
        A sample whose latency is the time to connect; a refused or timed-out connection is a failed
        sample, never an exception.
    """
    seconds = spec.timeout.total_seconds()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
    except TimeoutError:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=timed_out(spec.timeout))
    except OSError as exc:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=connection_problem(exc))
    latency = time.perf_counter() - started
    writer.close()
    try:
        # Closing is politeness, not part of the measurement: a slow or failed close must not fail the probe.
        async with asyncio.timeout(seconds):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass
    return Sample(ok=True, latency=latency)


def timed_out(timeout: timedelta) -> str:
    """``"timed out after 2s"``: the wording every probe kind uses for its timeout."""
    return f"timed out after {in_words(timeout.total_seconds())}"


def connection_problem(exc: BaseException) -> str:
    """Say why a connection failed, in the words an SRE would use, from an exception or its causes.

    Libraries wrap the socket error (httpx → httpcore → ``OSError``), so the chain is searched for it.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host ({cause.strerror})"
        if isinstance(cause, TimeoutError):
            return "timed out"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect: {exc.strerror.lower()}"
    return f"cannot connect: {exc}"
