"""The acknowledged ids of a drill's writes: ranges merged as answers arrive in any order, encoded compactly,
bounded (a stated systematic sample past the bound), read back as an evenly spread sample; and data_loss judged."""

from __future__ import annotations

import base64
import random
import zlib

import pytest

from gameday.model.data_loss import (
    MAX_ACKED_BYTES,
    MAX_RANGES,
    AckedIds,
    DataLoss,
    IdRanges,
    LossBound,
    ReadBack,
)
from gameday.model.records import data_loss_expectation
from gameday.model.traffic import Traffic


def _ranges(ids: list[int]) -> IdRanges:
    ranges = IdRanges()
    for ident in ids:
        ranges.add(ident)
    return ranges


def test_ids_arriving_out_of_order_merge_into_sorted_disjoint_ranges() -> None:
    ids = [*range(1, 101), *range(103, 201)]
    random.Random(7).shuffle(ids)
    ranges = _ranges(ids)
    assert ranges.ranges == [(1, 101), (103, 201)]
    assert (ranges.acknowledged, ranges.kept, ranges.sampled) == (198, 198, False)
    assert list(ranges) == sorted(ids)


def test_a_gap_filled_later_joins_both_neighbours() -> None:
    ranges = _ranges([1, 2, 4, 5, 3])
    assert ranges.ranges == [(1, 6)]


def test_encoding_round_trips_and_stays_small_for_ten_thousand_writes_with_losses() -> None:
    lost = set(random.Random(1).sample(range(1, 10_001), 17))
    ranges = _ranges([i for i in range(1, 10_001) if i not in lost])
    text = ranges.encode()
    back = IdRanges.decode(text, ranges.acknowledged)
    assert back.ranges == ranges.ranges and back.acknowledged == 10_000 - 17
    assert len(text) < 200  # 18 ranges


def test_past_the_bound_ranges_are_halved_into_a_stated_sample_spread_over_the_whole_run() -> None:
    # Every other write fails: one range per write, the worst case for ranges.
    count = MAX_RANGES * 5
    ranges = _ranges(list(range(0, 2 * count, 2)))
    assert ranges.acknowledged == count
    assert len(ranges.ranges) <= MAX_RANGES
    assert ranges.sampled and ranges.level >= 1
    assert ranges.kept == len(list(ranges))
    # About 1 in 2**level kept, from the start of the run to its end.
    assert ranges.kept >= count // (2**ranges.level) - 1
    kept = list(ranges)
    assert kept[0] < 0.01 * 2 * count and kept[-1] > 0.99 * 2 * count
    assert len(AckedIds(acknowledged=count, ranges=ranges.encode(), kept=ranges.kept).ranges) <= MAX_ACKED_BYTES


def test_the_worst_case_encoding_fits_the_heartbeat_bound() -> None:
    # Ranges at the bound with the largest gaps and lengths the varints take 5 bytes for.
    ranges = IdRanges()
    step = 2**31
    for i in range(MAX_RANGES):
        ranges.add(i * step)
    assert len(ranges.ranges) == MAX_RANGES
    assert len(ranges.encode()) <= MAX_ACKED_BYTES


def test_a_sample_is_spread_evenly_and_deterministically() -> None:
    ranges = _ranges([*range(1, 501), *range(1001, 1501)])
    picked = ranges.spread(10)
    assert picked == [1, 101, 201, 301, 401, 1001, 1101, 1201, 1301, 1401]
    assert ranges.spread(10) == picked
    assert ranges.spread(5000) == list(ranges)
    assert ReadBack(url="http://h/o/{{id}}", sample="10%").to_check(1000) == 100
    assert ReadBack(url="http://h/o/{{id}}", sample=50).to_check(20) == 20


def test_a_resumed_attempt_starts_past_every_id_the_lost_one_may_have_given() -> None:
    state = AckedIds(next_id=500, first_id=1, attempt_start=2.0)
    resumed = state.resumed(now=12.0, rate=100)
    # The lost attempt ran 10s at 100/s: at most ~1000 ids, whatever its last heartbeat said.
    assert resumed.next_id >= 1 + 10 * 100 and resumed.first_id == resumed.next_id
    assert resumed.attempt_start == 12.0


def test_writes_a_lost_worker_may_have_had_acknowledged_after_its_last_heartbeat_are_said_unchecked() -> None:
    # Its last heartbeat said next id 500; in the 10s it ran it may have given out up to id ~1000: those writes'
    # answers died with it. The read-back cannot check them, and the verdict must say so, not pass in silence.
    resumed = AckedIds(next_id=500, first_id=1, attempt_start=2.0).resumed(now=12.0, rate=100)
    assert 500 <= resumed.unaccounted <= resumed.next_id - 500
    again = resumed.resumed(now=resumed.attempt_start, rate=100)  # lost again at once: adds only its own window
    assert again.unaccounted >= resumed.unaccounted
    loss = DataLoss(
        acknowledged=400, checked=400, lost=0, duplicated=0, sampled=False, seconds=0.1, unaccounted=resumed.unaccounted
    )
    result = data_loss_expectation(LossBound.model_validate(0), loss)
    assert result.held is True and f"up to {resumed.unaccounted} write(s) of a lost traffic worker not checked" in (
        result.actual
    )


def test_a_service_that_finds_an_id_never_written_cannot_show_a_loss_and_is_not_judged() -> None:
    loss = DataLoss(acknowledged=50, checked=50, lost=0, duplicated=0, sampled=False, seconds=0.1, ghost_id=1051)
    result = data_loss_expectation(LossBound.model_validate(0), loss)
    assert result.held is None and "1051" in result.actual and "never written" in result.actual


@pytest.mark.parametrize(
    ("written", "lost", "duplicated", "checked", "held"),
    [
        (0, 0, 0, 100, True),
        (0, 1, 0, 100, False),
        (0, 0, 1, 100, False),
        ("<= 2", 2, 2, 100, True),
        ("< 2", 2, 0, 100, False),
        ("1%", 1, 0, 100, True),
        ("1%", 2, 0, 100, False),
    ],
)
def test_data_loss_holds_when_lost_and_duplicated_are_each_within_the_bound(
    written: object, lost: int, duplicated: int, checked: int, held: bool
) -> None:
    bound = LossBound.model_validate(written)
    loss = DataLoss(acknowledged=checked, checked=checked, lost=lost, duplicated=duplicated, sampled=False, seconds=0.1)
    result = data_loss_expectation(bound, loss)
    assert result.held is held, result
    assert (result.miss != "") is (not held)


def test_nothing_read_back_is_not_judged() -> None:
    result = data_loss_expectation(LossBound.model_validate(0), None, "not read back: the system did not recover")
    assert result.held is None and "did not recover" in result.actual


@pytest.mark.parametrize("sample", [None, 40, "10%", "100%"])
def test_read_back_and_the_bound_survive_the_payload_round_trip(sample: object) -> None:
    spec = ReadBack.model_validate({"url": "http://h/o/{{id}}", "sample": sample, "copies": "copies", "timeout": "1s"})
    assert ReadBack.model_validate_json(spec.model_dump_json()) == spec
    for written in (0, "<= 3", "0.1%"):
        bound = LossBound.model_validate(written)
        assert LossBound.model_validate_json(bound.model_dump_json()) == bound


@pytest.mark.parametrize("written", ["< 0", "< 0%", {"count": 0, "op": "<"}, "> 0", "-1", "101%"])
def test_a_bound_no_run_could_meet_or_that_points_the_wrong_way_is_refused_at_load(written: object) -> None:
    # "< 0" lost can never hold: the drill would deviate whatever the service did.
    with pytest.raises(ValueError):
        LossBound.model_validate(written)


@pytest.mark.parametrize(
    "url", ["http://shop{{id}}.example.com/o", "http://127.0.0.1:80{{id}}/o", "http://u{{id}}@127.0.0.1/o"]
)
def test_an_id_in_the_host_or_port_is_refused_so_each_write_never_goes_to_a_host_of_its_own(url: str) -> None:
    # The policy and the drill's declared targets are checked on the URL as written: ids go in the path or body.
    with pytest.raises(ValueError, match="path"):
        ReadBack.model_validate({"url": url})
    with pytest.raises(ValueError, match="path"):
        Traffic.model_validate({"rate": "10/s", "endpoints": [{"url": url, "method": "PUT"}]})
    Traffic.model_validate({"rate": "10/s", "endpoints": [{"url": "http://127.0.0.1/o/{{id}}?x={{id}}"}]})


def test_a_read_back_takes_its_ids_a_chunk_at_a_time_never_the_whole_list() -> None:
    # A day of writes at a high rate is one range of billions of ids: the read-back must never expand it whole.
    varints = bytearray()
    for value in (0, 0, 10, 10**12):  # level, new_ranges, then one range: ids 10 .. 10**12 + 9
        while value >= 0x80:
            varints.append((value & 0x7F) | 0x80)
            value >>= 7
        varints.append(value)
    huge = IdRanges.decode(base64.b64encode(zlib.compress(bytes(varints))).decode(), 10**12)
    assert huge.spread_slice(10**12, 5, 8) == [15, 16, 17]
    assert huge.spread_slice(4, 1, 4) == [10 + 250_000_000_000, 10 + 500_000_000_000, 10 + 750_000_000_000]
    small = _ranges([*range(1, 50), *range(60, 90, 3)])
    for count in (1, 7, 59, 100):
        assert [i for lo in range(0, 60, 8) for i in small.spread_slice(count, lo, lo + 8)] == small.spread(count)
