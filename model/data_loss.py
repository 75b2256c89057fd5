"""No data loss (``observe.expect.data_loss``): which writes the service acknowledged, and whether it still has them.

A traffic endpoint whose URL or body holds ``{{id}}`` gets a unique sequential id per request (its own counter, so
the ids of one endpoint's writes are consecutive). Each write answered 2xx is *acknowledged*: its id goes into
:class:`IdRanges`, sorted disjoint ranges merged as the answers arrive, which travel compactly (varints of the
gaps and lengths, zlib, base64: :class:`AckedIds`) in the traffic's heartbeat and result. After recovery,
``read_back`` requests every acknowledged id (or a sample) and counts what is :class:`DataLoss`.

Pure and deterministic: safe in the workflow sandbox.
"""

from __future__ import annotations

import base64
import bisect
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jmespath.exceptions
from pydantic import Field, field_validator, model_validator

from gameday.model.base import Record, Strict, http_url
from gameday.model.budget import KIB
from gameday.model.kinds.probe_http import compiled_path
from gameday.model.units import Comparison, Duration, parse_percent, split_comparison

ID = "{{id}}"
"""The placeholder in a traffic endpoint's URL or body (and in ``read_back.url``) that each request's id replaces.
Not ``${...}``: ``${env:NAME}`` (header secrets) never reads it, and it is no YAML or JSON syntax."""

MAX_RANGES = 4096
"""Ranges of acknowledged ids kept. Past it every other range is dropped and from then on only every 2**level-th
new range is kept: a systematic sample, about one id in 2**level, spread over the whole run (see :class:`IdRanges`).
Worst case ~10 bytes a range before zlib and base64: :data:`MAX_ACKED_BYTES` holds with room."""
MAX_ACKED_BYTES = 64 * KIB
"""The acknowledged ids as they travel in a heartbeat (the encoded text): at most this."""
MAX_LOST_IDS = 20
"""Lost ids named in the record (the first ones, by id); the count is always exact."""
READ_BACK_ATTEMPTS = 2
"""Requests per id when there is no answer or a 5xx: one transient failure does not make a write lost."""
READ_BACK_CHUNK = 8
"""Ids per concurrent slot between two progress points of the read-back (a chunk is ``concurrency * 8`` ids)."""
RESUME_MARGIN = 10.0
"""Seconds of ids (at the traffic's rate) skipped on top of the worst case when traffic resumes on another worker,
against clock skew between the two workers."""


def id_outside_authority(url: str) -> str:
    """``url`` unchanged; refused when ``{{id}}`` is in its host, port or user part (before the path).

    The policy and the drill's declared targets are checked on the URL as written: an id in the authority would
    send each write to a host (or port) of its own that nobody declared.
    """
    rest = url.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if ID in authority:
        raise ValueError(f"{ID} goes in the URL's path or query (or the body), never in its host, port or user part")
    return url


class IdRanges:
    """Sorted disjoint half-open ranges ``[start, end)`` of acknowledged ids, merged as ids arrive in any order.

    Bounded: at most :data:`MAX_RANGES` ranges. When an id would make one more, every other range is dropped
    (``level`` goes up by one) and from then on a new range is kept only if it is the 2**level-th since: each id is
    then kept with the same chance, about 1 in 2**level (a range is kept or dropped whole, and an id extending a
    kept range is kept). ``acknowledged`` stays the exact count; ``kept`` is what a read-back can check.
    """

    __slots__ = ("_ends", "_starts", "acknowledged", "kept", "level", "new_ranges")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.acknowledged = 0
        self.kept = 0
        self.level = 0
        self.new_ranges = 0
        """Ranges started since the last drop: which of them to keep (every 2**level-th)."""

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    @property
    def sampled(self) -> bool:
        """Some acknowledged ids were dropped to stay in bounds."""
        return self.kept < self.acknowledged

    def add(self, ident: int) -> None:
        """Count ``ident`` acknowledged (an id acknowledged twice counts once only if it is kept: ids are unique)."""
        self.acknowledged += 1
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(starts, ident)  # ranges[i-1] starts at or before ident
        if i and ends[i - 1] > ident:
            self.acknowledged -= 1  # already in
            return
        joins_left = i > 0 and ends[i - 1] == ident
        joins_right = i < len(starts) and starts[i] == ident + 1
        if joins_left and joins_right:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif joins_left:
            ends[i - 1] = ident + 1
        elif joins_right:
            starts[i] = ident
        else:
            self.new_ranges += 1
            if self.level and (self.new_ranges - 1) % (1 << self.level):
                return  # not this range's turn: dropped, counted
            starts.insert(i, ident)
            ends.insert(i, ident + 1)
            if len(starts) > MAX_RANGES:
                self._drop_half()
                return
        self.kept += 1

    def _drop_half(self) -> None:
        self._starts, self._ends = self._starts[::2], self._ends[::2]
        self.kept = sum(e - s for s, e in zip(self._starts, self._ends, strict=True))
        self.level += 1
        self.new_ranges = 0

    def copy(self) -> IdRanges:
        twin = IdRanges()
        twin._starts, twin._ends = list(self._starts), list(self._ends)
        twin.acknowledged, twin.kept, twin.level, twin.new_ranges = (
            self.acknowledged,
            self.kept,
            self.level,
            self.new_ranges,
        )
        return twin

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield from range(start, end)

    def at(self, rank: int) -> int:
        """The ``rank``-th kept id (0-based, ascending)."""
        for start, end in zip(self._starts, self._ends, strict=True):
            if rank < end - start:
                return start + rank
            rank -= end - start
        raise IndexError(rank)

    def spread(self, count: int) -> list[int]:
        """``count`` kept ids spread evenly over them (ranks ``i * kept // count``): deterministic, ascending."""
        if count >= self.kept:
            return list(self)
        wanted = [i * self.kept // count for i in range(count)]
        picked: list[int] = []
        base, j = 0, 0
        for start, end in zip(self._starts, self._ends, strict=True):
            while j < len(wanted) and wanted[j] < base + end - start:
                picked.append(start + wanted[j] - base)
                j += 1
            base += end - start
        return picked

    def spread_slice(self, count: int, lo: int, hi: int) -> list[int]:
        """``spread(count)[lo:hi]`` without expanding the rest: the read-back takes its ids a chunk at a time, so a
        range of billions of ids never becomes a list."""
        count = min(count, self.kept)
        hi = min(hi, count)
        if lo >= hi:
            return []
        ranks = range(lo, hi) if count == self.kept else [i * self.kept // count for i in range(lo, hi)]
        picked: list[int] = []
        base, j = 0, 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if base + end - start <= ranks[0]:
                base += end - start
                continue
            while j < len(ranks) and ranks[j] < base + end - start:
                picked.append(start + ranks[j] - base)
                j += 1
            if j == len(ranks):
                break
            base += end - start
        return picked

    def encode(self) -> str:
        """``level``, ``new_ranges``, then each range as (gap from the previous end, length): varints, zlib, base64."""
        out = bytearray()
        _varint(out, self.level)
        _varint(out, self.new_ranges)
        previous = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            _varint(out, start - previous)
            _varint(out, end - start)
            previous = end
        return base64.b64encode(zlib.compress(bytes(out), 9)).decode("ascii")

    @classmethod
    def decode(cls, text: str, acknowledged: int) -> IdRanges:
        """The ranges :meth:`encode` wrote; ``acknowledged`` is carried beside them (:class:`AckedIds`)."""
        data = zlib.decompress(base64.b64decode(text)) if text else b""
        values = list(_varints(data))
        ranges = cls()
        if values:
            ranges.level, ranges.new_ranges = values[0], values[1]
        previous = 0
        for gap, length in zip(values[2::2], values[3::2], strict=True):
            ranges._starts.append(previous + gap)
            ranges._ends.append(previous + gap + length)
            previous += gap + length
        ranges.kept = sum(e - s for s, e in zip(ranges._starts, ranges._ends, strict=True))
        ranges.acknowledged = max(acknowledged, ranges.kept)
        return ranges


def _varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varints(data: bytes) -> Iterator[int]:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            yield value
            value = shift = 0


class AckedIds(Record):
    """The traffic's ids in compact form: in its heartbeats (resumed from), its result, and the read-back's input."""

    next_id: int = 1
    """The next id to give out. A traffic resumed on another worker starts past every id the lost one may have
    given out since its last heartbeat (see ``first_id``), so ids stay unique within the run."""
    first_id: int = 1
    """The first id of the current attempt, given out from ``attempt_start``."""
    attempt_start: float = 0.0
    """Seconds after the traffic's start when the current attempt began giving out ids."""
    acknowledged: int = 0
    """Writes answered 2xx: the exact count, whatever was kept."""
    ranges: str = Field(default="", max_length=MAX_ACKED_BYTES)
    """:meth:`IdRanges.encode` of the acknowledged ids kept."""
    kept: int = 0
    """Acknowledged ids in ``ranges`` (below ``acknowledged`` once the bound made it a sample)."""
    unaccounted: int = 0
    """Ids lost attempts may have given out after their last heartbeat (an upper bound, from their rate): whether
    those writes were acknowledged died with the worker, so the read-back cannot check them (said, not hidden)."""

    def id_ranges(self) -> IdRanges:
        return IdRanges.decode(self.ranges, self.acknowledged)

    def resumed(self, now: float, rate: float) -> AckedIds:
        """The state a new attempt starts from at ``now`` (seconds after the traffic's start).

        The lost attempt sent at most one request per ``1/rate`` s since its own start (its schedule never runs
        ahead), so no id it gave out reaches ``first_id + (now - attempt_start) * rate`` (+ a margin for skew).
        """
        reach = self.first_id + int((now - self.attempt_start) * rate) + 1
        bound = self.first_id + int((now - self.attempt_start + RESUME_MARGIN) * rate) + 2
        start = max(self.next_id, bound)
        unaccounted = self.unaccounted + max(0, min(reach, start) - self.next_id)
        return self.model_copy(
            update={"next_id": start, "first_id": start, "attempt_start": now, "unaccounted": unaccounted}
        )


class ReadBack(Strict):
    """``observe.traffic.read_back``: how to read one acknowledged write back, after recovery."""

    url: str
    """Holds ``{{id}}``: ``http://127.0.0.1:8000/orders/{{id}}``."""
    status: int = Field(default=200, ge=100, le=599)
    """The status that says "the write is there"; any other answer (or none, twice) counts it lost."""
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    """``${env:NAME}`` values are read from the worker's environment, as for the traffic."""
    sample: int | float | None = None
    """Read back only this many acknowledged ids (``500``) or this share (``"10%"``), spread evenly over them."""
    concurrency: int = Field(default=32, ge=1, le=512)
    """Read-back requests in flight at once."""
    timeout: Duration = timedelta(seconds=2)
    """Per request."""
    copies: str | None = None
    """A JMESPath into the answer's JSON body giving how many copies of the write the service holds (``copies``,
    ``length(items)``): above 1 counts the write ``duplicated``, below 1 (``0``, an empty list) ``lost``."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        http_url(value)
        id_outside_authority(value)
        if ID not in value:
            raise ValueError(f"read_back.url needs {ID} where the write's id goes, e.g. http://host/orders/{ID}")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in ("GET", "HEAD", "POST"):
            raise ValueError("expected GET, HEAD or POST")
        return value.upper()

    @field_validator("sample", mode="before")
    @classmethod
    def _sample(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            share = parse_percent(value)
            if share <= 0:
                raise ValueError("expected a share above 0%")
            return float(share)
        if isinstance(value, float) and 0 < value <= 1:
            return value  # a share, as serialised
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError('expected a count of ids (500) or a share ("10%")')
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=1):
            raise ValueError("expected a timeout above 0s and at most 1m")
        return value

    @field_validator("copies")
    @classmethod
    def _copies(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled_path(value)
        except jmespath.exceptions.JMESPathError:
            raise ValueError(f"not a JMESPath expression: {value!r}") from None
        return value

    def time_budget(self, count: int) -> timedelta:
        """The longest reading ``count`` ids back may take: every request timing out, every attempt."""
        chunk = self.concurrency * READ_BACK_CHUNK
        chunks = -(-count // chunk)
        return chunks * READ_BACK_CHUNK * READ_BACK_ATTEMPTS * self.timeout + timedelta(minutes=1)

    def to_check(self, kept: int) -> int:
        """How many of ``kept`` ids to read back."""
        if self.sample is None:
            return kept
        if isinstance(self.sample, float):
            return min(kept, max(1, round(kept * self.sample))) if kept else 0
        return min(kept, self.sample)


class LossBound(Record):
    """``observe.expect.data_loss``: at most ``count`` writes, or ``share`` of those checked, lost (and duplicated).

    Written ``0``, ``5``, ``"0.1%"``, ``"<= 5"`` or ``"< 1%"``: bare means "at most".
    """

    count: int | None = None
    share: float | None = None
    op: Comparison = "<="

    @model_validator(mode="before")
    @classmethod
    def _written(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        op, rest = split_comparison(data)
        if op is not None and op[0] != "<":
            raise ValueError(f"{data!r} points the wrong way: data_loss is a ceiling; write '<= {rest}' or {rest}")
        if isinstance(rest, str) and rest.strip().endswith("%"):
            return {"share": parse_percent(rest), "op": op or "<="}
        if isinstance(rest, str) and rest.strip().isdigit():
            rest = int(rest)
        if isinstance(rest, bool) or not isinstance(rest, int) or rest < 0:
            raise ValueError(f'expected a count of writes (0) or a share ("0.1%"), bare or after < or <=, got {data!r}')
        return {"count": rest, "op": op or "<="}

    @model_validator(mode="after")
    def _can_hold(self) -> LossBound:
        value = self.share if self.share is not None else self.count
        if self.op == "<" and not value:
            raise ValueError("'< 0' can never hold (nothing is below 0): write 0 for no data loss")
        if (self.count is not None and self.count < 0) or (self.share is not None and not 0 <= self.share <= 1):
            raise ValueError("expected a count of 0 or more, or a share from 0% to 100%")
        return self

    def shown(self) -> str:
        value = f"{self.share * 100:g}%" if self.share is not None else str(self.count)
        return f"{self.op} {value}"

    def holds(self, bad: int, checked: int) -> bool:
        """Whether ``bad`` of ``checked`` is within the bound."""
        if self.share is not None:
            value, limit = (bad / checked if checked else 0.0), self.share
        else:
            value, limit = float(bad), float(self.count or 0)
        return value < limit if self.op == "<" else value <= limit


class DataLoss(Record):
    """What the read-back found: ``report --format json`` shows it as ``data_loss`` with these plain names."""

    acknowledged: int
    """Writes answered 2xx during the drill."""
    checked: int
    """Acknowledged ids read back."""
    lost: int
    """Read back without the expected status (no answer twice counts too)."""
    duplicated: int
    """Read back with the expected status and ``copies`` above 1: the service holds the write more than once."""
    sampled: bool
    """``checked`` is below ``acknowledged``: ``read_back.sample``, or the ids kept were a sample (past the bound)."""
    seconds: float
    """How long the read-back took."""
    lost_ids: list[int] = Field(default_factory=list, max_length=MAX_LOST_IDS)
    """The first lost ids (by id), at most 20."""
    unaccounted: int = 0
    """Writes a lost traffic worker may have had acknowledged after its last heartbeat (an upper bound): not
    checked, and not in ``acknowledged`` (:attr:`AckedIds.unaccounted`)."""
    ghost_id: int | None = None
    """An id the traffic never gave out that read back as found: the service answers for any id, so a lost write
    cannot be told from a kept one and ``data_loss`` is not judged. ``None``: it was not found (or not tried)."""


class ReadBackInput(Record):
    """Argument of ``read_back``: the acknowledged ids in compact form, never a list."""

    run_id: str
    read_back: ReadBack
    acked: AckedIds


class ReadBackProgress(Record):
    """``read_back``'s heartbeat: resumed from after a retry."""

    done: int = 0
    """Ids of the ordered list to check already checked (all of the first ``done``)."""
    lost: int = 0
    duplicated: int = 0
    lost_ids: list[int] = Field(default_factory=list)
    seconds: float = 0.0
