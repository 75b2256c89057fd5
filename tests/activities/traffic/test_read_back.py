"""The ``read_back`` activity against the loopback server, whose ``/status/<code>`` answers that code: reading id
200 finds the write, 404 (and a 500, retried once) count it lost; a retry resumes from the heartbeat's progress."""

from __future__ import annotations

import dataclasses

from temporalio.testing import ActivityEnvironment

from gameday.activities.traffic.read_back import read_back
from gameday.model.data_loss import AckedIds, IdRanges, ReadBack, ReadBackInput, ReadBackProgress
from tests.activities.traffic.conftest import Target


def _input(target: Target, ids: list[int], **spec: object) -> ReadBackInput:
    ranges = IdRanges()
    for ident in ids:
        ranges.add(ident)
    acked = AckedIds(acknowledged=ranges.acknowledged, ranges=ranges.encode(), kept=ranges.kept)
    read = ReadBack.model_validate({"url": f"{target.url}/status/{{{{id}}}}", "timeout": "1s", **spec})
    return ReadBackInput(run_id="r", read_back=read, acked=acked)


async def test_ids_not_read_back_with_the_expected_status_are_lost_and_named(target: Target) -> None:
    heartbeats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details[0])

    loss = await env.run(read_back, _input(target, [200, 201, 404, 500]))

    assert (loss.acknowledged, loss.checked, loss.lost, loss.duplicated) == (4, 4, 3, 0)
    assert loss.lost_ids == [201, 404, 500] and not loss.sampled
    assert heartbeats and isinstance(heartbeats[-1], ReadBackProgress)


async def test_a_retry_resumes_from_the_progress_its_last_attempt_heartbeated(target: Target) -> None:
    env = ActivityEnvironment()
    done = ReadBackProgress(done=2, lost=1, lost_ids=[7], seconds=1.0)  # ids 200 and 7 (lost) checked before
    env.info = dataclasses.replace(env.info, heartbeat_details=[done])

    loss = await env.run(read_back, _input(target, [7, 200, 404]))

    assert (loss.checked, loss.lost, loss.lost_ids) == (3, 2, [7, 404])


async def test_a_sample_reads_back_that_many_ids_spread_evenly(target: Target) -> None:
    loss = await ActivityEnvironment().run(read_back, _input(target, list(range(200, 300)), sample="10%"))
    # Ids 200, 210 … 290: each answered its own status; only 200 is the expected one.
    assert (loss.acknowledged, loss.checked, loss.lost, loss.sampled) == (100, 10, 9, True)


async def test_a_service_that_answers_any_id_is_caught_by_an_id_never_written(target: Target) -> None:
    # Ghost acks: /ghost/<anything> answers 200, so every write "reads back" and none could ever be lost.
    inp = _input(target, [200, 201])
    inp = inp.model_copy(
        update={
            "read_back": inp.read_back.model_copy(update={"url": f"{target.url}/ghost/{{{{id}}}}"}),
            "acked": inp.acked.model_copy(update={"next_id": 202}),
        }
    )
    ghost = await ActivityEnvironment().run(read_back, inp)
    assert (ghost.checked, ghost.lost, ghost.ghost_id) == (2, 0, 202)

    honest = await ActivityEnvironment().run(read_back, _input(target, [200]))  # /status/<next id> is no 200
    assert honest.ghost_id is None


async def test_an_answer_saying_it_holds_no_copy_counts_the_write_lost(target: Target) -> None:
    # A lookup answering 200 {"copies": 0} (or `length(items)` of an empty list) does not have the write.
    def at(path: str) -> ReadBackInput:
        inp = _input(target, [200, 201, 202], copies="copies")
        return inp.model_copy(update={"read_back": inp.read_back.model_copy(update={"url": f"{target.url}/{path}"})})

    none = await ActivityEnvironment().run(read_back, at("copies/0/{{id}}"))
    assert (none.checked, none.lost, none.duplicated, none.ghost_id) == (3, 3, 0, None)
    twice = await ActivityEnvironment().run(read_back, at("copies/2/{{id}}"))
    assert (twice.lost, twice.duplicated) == (0, 3)
