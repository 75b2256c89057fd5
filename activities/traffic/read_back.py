"""``read_back``: after recovery, read every acknowledged write of the traffic back and count what is lost.

The ids come in compact form (:class:`~model.data_loss.AckedIds`, never a list); the activity expands them, or
the ``sample`` of them spread evenly, a chunk at a time (never the whole list: a long run's ids are billions), and
requests ``read_back.url`` for each with at most ``concurrency`` in flight. It heartbeats its progress (how many
of the ordered ids are done, the counts so far), so a retry on another worker carries on instead of starting over.
Answers are counted, never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from enum import StrEnum

import aiohttp
import jmespath.exceptions
from pydantic import ValidationError
from temporalio import activity

from gameday.activities import policy, secrets
from gameday.model.data_loss import (
    ID,
    MAX_LOST_IDS,
    READ_BACK_ATTEMPTS,
    READ_BACK_CHUNK,
    DataLoss,
    ReadBack,
    ReadBackInput,
    ReadBackProgress,
)
from gameday.model.kinds.probe_http import compiled_path

HEARTBEAT_EVERY = 0.5
"""Seconds between heartbeats (progress, and a cancel arrives through them)."""
MAX_BODY = 1024 * 1024
"""Bytes of an answer ``copies`` parses; a larger one counts as one copy."""


class Found(StrEnum):
    """What reading one acknowledged id back found."""

    FOUND = "found"
    LOST = "lost"
    DUPLICATED = "duplicated"


@activity.defn(name="read_back")
async def read_back(inp: ReadBackInput) -> DataLoss:
    """Read back the acknowledged ids of ``inp`` (or the sample); how many are lost, duplicated.

    Raises:
        ApplicationError: ``PolicyRefused`` (non-retryable) when this worker's policy refuses the host.
    """
    worker_policy = policy.current()
    if refusals := worker_policy.url_refusals("observe.traffic.read_back.url", inp.read_back.url):
        raise policy.refused(refusals, worker_policy)
    ranges = inp.acked.id_ranges()
    count = inp.read_back.to_check(ranges.kept)
    progress = _progress(activity.info().heartbeat_details) or ReadBackProgress()
    started = time.monotonic() - progress.seconds
    headers = secrets.resolve(inp.read_back.headers).headers or None
    latest = [progress]  # what the heartbeat task sends: the last progress point

    async def beat() -> None:
        while True:
            activity.heartbeat(latest[0])
            await asyncio.sleep(HEARTBEAT_EVERY)

    beating = asyncio.create_task(beat())
    try:
        connector = aiohttp.TCPConnector(limit=inp.read_back.concurrency, limit_per_host=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            # The next id was never given out (the traffic stopped first): found, the check cannot see a loss.
            control = inp.acked.next_id
            ghost = count > 0 and await _check(session, inp.read_back, headers, control) != Found.LOST
            step = inp.read_back.concurrency * READ_BACK_CHUNK
            while progress.done < count:
                chunk = ranges.spread_slice(count, progress.done, progress.done + step)
                verdicts = await _check_all(session, inp.read_back, headers, chunk)
                lost = [i for i, v in zip(chunk, verdicts, strict=True) if v == Found.LOST]
                progress = ReadBackProgress(
                    done=progress.done + len(chunk),
                    lost=progress.lost + len(lost),
                    duplicated=progress.duplicated + verdicts.count(Found.DUPLICATED),
                    lost_ids=[*progress.lost_ids, *lost][:MAX_LOST_IDS],
                    seconds=time.monotonic() - started,
                )
                latest[0] = progress
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
    return DataLoss(
        acknowledged=inp.acked.acknowledged,
        checked=progress.done,
        lost=progress.lost,
        duplicated=progress.duplicated,
        sampled=progress.done < inp.acked.acknowledged,
        seconds=round(time.monotonic() - started, 3),
        lost_ids=progress.lost_ids,
        unaccounted=inp.acked.unaccounted,
        ghost_id=control if ghost else None,
    )


async def _check_all(
    session: aiohttp.ClientSession, spec: ReadBack, headers: dict[str, str] | None, ids: Sequence[int]
) -> list[Found]:
    """Each id's verdict, in order, with at most ``spec.concurrency`` requests in flight."""
    slots = asyncio.Semaphore(spec.concurrency)

    async def one(ident: int) -> Found:
        async with slots:
            return await _check(session, spec, headers, ident)

    return list(await asyncio.gather(*(one(i) for i in ids)))


async def _check(session: aiohttp.ClientSession, spec: ReadBack, headers: dict[str, str] | None, ident: int) -> Found:
    url = spec.url.replace(ID, str(ident))
    seconds = spec.timeout.total_seconds()
    status, body = 0, b""
    for _ in range(READ_BACK_ATTEMPTS):
        try:
            async with asyncio.timeout(seconds):
                async with session.request(spec.method, url, headers=headers, allow_redirects=False) as response:
                    status = response.status
                    body = await response.content.read(MAX_BODY + 1) if spec.copies is not None else b""
        except (TimeoutError, aiohttp.ClientError, OSError):
            status = 0
        if status and status < 500:
            break
    if status != spec.status:
        return Found.LOST
    copies = 1.0 if spec.copies is None else _copies(spec.copies, body)
    if copies < 1:  # the lookup answered, and says it holds none: 200 {"copies": 0}, `length(items)` of []
        return Found.LOST
    return Found.DUPLICATED if copies > 1 else Found.FOUND


def _copies(path: str, body: bytes) -> float:
    """How many copies the answer says the service holds; 1 when it does not say (not JSON, no number there)."""
    if len(body) > MAX_BODY:
        return 1
    try:
        value = compiled_path(path).search(json.loads(body))
    except (ValueError, jmespath.exceptions.JMESPathError):
        return 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 1
    return float(value)


def _progress(details: Sequence[object]) -> ReadBackProgress | None:
    """The progress a previous attempt heartbeated, if any."""
    if not details:
        return None
    last = details[0]
    if isinstance(last, ReadBackProgress):
        return last
    try:
        return ReadBackProgress.model_validate(last)
    except ValidationError:
        return None
