"""The verdict and time-to-safe rules as pure functions (``model/verdict.py``): no Temporal, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gameday.model.records import Coverage, FaultRecord, FaultState, StopRequest, Verdict, service_levels_unjudged
from gameday.model.score import score_run
from gameday.model.traffic import Expect
from gameday.model.verdict import Outcome, judge, time_to_safe

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _fault(
    state: FaultState = FaultState.REVERTED, *, applied: bool = True, reverted: float | None = 1.0
) -> FaultRecord:
    return FaultRecord(
        index=0,
        label="pause db",
        target="db",
        kind="docker",
        action="pause",
        state=state,
        applied_at=T0 if applied else None,
        reverted_at=None if reverted is None else T0 + timedelta(seconds=reverted),
    )


def _coverage(covered: float, minimum: float) -> Coverage:
    return Coverage(
        window_start=T0,
        window_end=T0 + timedelta(seconds=10),
        interval=1.0,
        ticks_expected=10,
        ticks_taken=round(covered * 10),
        covered=covered,
        min_coverage=minimum,
    )


def test_a_run_that_held_and_recovered_is_resilient() -> None:
    assert judge(Outcome(faults=[_fault()])) == (
        Verdict.RESILIENT,
        "expectations held under fault; the system recovered",
    )


def test_a_fault_left_in_place_is_an_error_whatever_else_happened() -> None:
    stop = StopRequest(reason="oops", by="ana")
    outcome = Outcome(
        faults=[_fault(FaultState.NOT_REVERTED, reverted=None)], not_steady=True, stop=stop, deviated=True
    )
    assert judge(outcome) == (Verdict.ERROR, "a fault could NOT be reverted: act now")


def test_the_rules_apply_in_order_not_steady_not_recovered_aborted_error_deviated_inconclusive() -> None:
    stop = StopRequest(reason="too loud", by="ana")
    assert judge(Outcome(not_steady=True, not_recovered=True))[0] is Verdict.NOT_STEADY
    assert judge(Outcome(not_recovered=True, stop=stop))[0] is Verdict.NOT_RECOVERED
    assert judge(Outcome(stop=stop, errors=["boom"])) == (Verdict.ABORTED, "stopped by ana: too loud")
    assert judge(Outcome(errors=["boom"], deviated=True)) == (Verdict.ERROR, "boom (nothing injected)")
    assert judge(Outcome(faults=[_fault()], errors=["boom"])) == (Verdict.ERROR, "boom (faults reverted)")
    assert judge(Outcome(deviated=True, expect_misses=["p95 900ms > 800ms"], coverage=_coverage(0.1, 0.8))) == (
        Verdict.DEVIATED,
        "expectations broke under fault (p95 900ms > 800ms); the system recovered",
    )
    verdict, why = judge(Outcome(coverage=_coverage(0.5, 0.8)))
    assert verdict is Verdict.INCONCLUSIVE
    assert "covered 50% of the observation under fault (observe.min_coverage 80%)" in why
    assert judge(Outcome(coverage=_coverage(0.9, 0.8)))[0] is Verdict.RESILIENT


def test_time_to_safe_counts_from_when_the_stop_was_sent_to_the_last_revert_and_the_first_healthy_check() -> None:
    stop = StopRequest(reason="r", sent_at=T0, received_at=T0 + timedelta(seconds=3))
    faults = [_fault(reverted=0.2), _fault(reverted=0.4)]
    assert time_to_safe(stop, faults, T0 + timedelta(seconds=2)) == {"time_to_safe": 0.4, "time_to_healthy": 2.0}


def test_time_to_safe_is_zero_when_nothing_was_left_to_revert_and_unknown_when_a_fault_stayed() -> None:
    stop = StopRequest(reason="r", received_at=T0 + timedelta(seconds=5))
    assert time_to_safe(stop, [_fault(reverted=1.0)], None) == {"time_to_safe": 0.0, "time_to_healthy": None}
    stuck = [_fault(FaultState.NOT_REVERTED, reverted=None)]
    assert time_to_safe(stop, stuck, None) == {"time_to_safe": None, "time_to_healthy": None}


def test_a_run_not_stopped_has_no_time_to_safe() -> None:
    assert time_to_safe(None, [_fault()], T0) == {}


def test_the_score_sits_beside_the_verdict_and_reads_it() -> None:
    assert score_run(judge(Outcome(faults=[_fault()]))[0]).score == 100.0
    assert score_run(judge(Outcome(not_recovered=True))[0]).score == 0.0
    assert score_run(judge(Outcome(stop=StopRequest(reason="r")))[0]).score is None


def test_a_drill_without_faults_that_held_is_resilient_without_claiming_a_fault_or_a_recovery() -> None:
    verdict, why = judge(Outcome(faults=[]))

    assert verdict is Verdict.RESILIENT
    assert why == "expectations held; no fault declared: nothing was injected"


def test_an_expectation_that_could_not_be_judged_makes_the_run_inconclusive_never_resilient() -> None:
    unjudged = ["detect (not judged: the watch took no sample)"]
    verdict, why = judge(Outcome(faults=[_fault()], unjudged=unjudged))
    assert verdict is Verdict.INCONCLUSIVE
    assert why == (
        "evidence incomplete: not judged: detect (not judged: the watch took no sample); "
        "the system recovered and the other expectations held"
    )
    assert judge(Outcome(faults=[_fault()], unjudged=unjudged, deviated=True))[0] is Verdict.DEVIATED


def test_service_levels_of_a_lost_traffic_are_one_line_not_judged_and_the_run_inconclusive() -> None:
    expect = Expect.model_validate({"availability": ">= 99%", "latency_p95": "< 800ms", "detect": None})
    line = service_levels_unjudged(expect)

    assert line is not None and line.held is None and line.name == "service_levels"
    assert line.expected == "availability >= 99%, latency p95 < 800ms"
    assert "traffic was lost" in line.actual
    verdict, why = judge(Outcome(faults=[_fault()], unjudged=[f"{line.name} ({line.actual})"]))
    assert verdict is Verdict.INCONCLUSIVE and "service_levels" in why
    # Only the service levels need the traffic: expectations without them have nothing to add.
    assert service_levels_unjudged(None) is None
    assert service_levels_unjudged(Expect.model_validate({"data_loss": 0})) is None
