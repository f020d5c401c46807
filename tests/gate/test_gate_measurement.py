"""Argo-style measurements and limits as a pure state machine."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.gate import Verdict
from genesis.gate.expression import compile_condition
from genesis.gate.measurement import (
    Limits,
    Measurement,
    MetricStatus,
    Phase,
    Progress,
    assess,
    measure,
    run_verdict,
)

BELOW = compile_condition("result[0] < 0.01")
ABOVE = compile_condition("result[0] > 0.05")


@pytest.mark.parametrize(
    ("value", "success", "failure", "phase"),
    [
        ([0.001], BELOW, None, Phase.SUCCESSFUL),
        ([0.02], BELOW, None, Phase.FAILED),
        ([0.02], None, ABOVE, Phase.SUCCESSFUL),
        ([0.10], None, ABOVE, Phase.FAILED),
        ([0.001], BELOW, ABOVE, Phase.SUCCESSFUL),
        ([0.02], BELOW, ABOVE, Phase.INCONCLUSIVE),
        ([0.10], BELOW, ABOVE, Phase.FAILED),
        ([0.10], None, None, Phase.SUCCESSFUL),
        (0.001, BELOW, None, Phase.SUCCESSFUL),
    ],
)
def test_measure_follows_argo_rules(
    value: object, success: object, failure: object, phase: Phase
) -> None:
    assert measure(value, success, failure).phase is phase  # type: ignore[arg-type]


def test_query_errors_are_errors_not_failures() -> None:
    m = measure(None, BELOW, None, error="connection refused")
    assert m.phase is Phase.ERROR
    assert "connection refused" in m.message
    assert measure(None, BELOW, None).phase is Phase.ERROR


def test_no_series_and_nan_are_inconclusive_not_failures() -> None:
    empty = measure([], BELOW, None)
    assert empty.phase is Phase.INCONCLUSIVE
    assert "no series" in empty.message
    nan = measure([math.nan], BELOW, None)
    assert nan.phase is Phase.INCONCLUSIVE
    assert "NaN" in nan.message


def test_a_condition_that_cannot_evaluate_is_an_error() -> None:
    m = measure([1.0, 2.0], compile_condition("result < 0.01"), None)
    assert m.phase is Phase.ERROR
    assert "2 values" in m.message


def _progress(*phases: Phase) -> Progress:
    progress = Progress()
    for phase in phases:
        progress = progress.record(Measurement(phase, None, ""))
    return progress


S, F, N, E = Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE, Phase.ERROR


def test_tally_and_consecutive_errors_reset_on_a_good_measurement() -> None:
    progress = _progress(E, E, S, E)
    assert (progress.successful, progress.errors, progress.consecutive_errors) == (1, 3, 1)
    assert len(progress.measurements) == 4


def test_failure_limit() -> None:
    limits = Limits(count=5, failure_limit=1)
    assert assess(limits, _progress(S, F))[0] is Phase.RUNNING
    phase, message = assess(limits, _progress(S, F, F))
    assert phase is Phase.FAILED
    assert message == "2 failed measurements exceed failureLimit 1"


def test_inconclusive_limit() -> None:
    phase, message = assess(Limits(count=5, inconclusive_limit=1), _progress(N, S, N))
    assert phase is Phase.INCONCLUSIVE
    assert "inconclusiveLimit 1" in message


def test_consecutive_error_limit_default_is_argos_four() -> None:
    limits = Limits(count=10)
    assert assess(limits, _progress(E, E, E, E))[0] is Phase.RUNNING
    phase, message = assess(limits, _progress(E, E, E, E, E))
    assert phase is Phase.ERROR
    assert "consecutiveErrorLimit 4" in message
    assert assess(limits, _progress(E, E, E, S, E, E, E))[0] is Phase.RUNNING


def test_failures_outrank_errors() -> None:
    limits = Limits(count=10, consecutive_error_limit=0)
    assert assess(limits, _progress(F, E))[0] is Phase.FAILED


def test_count_reached_succeeds_within_limits() -> None:
    phase, message = assess(Limits(count=3, failure_limit=1), _progress(S, F, S))
    assert phase is Phase.SUCCESSFUL
    assert message.startswith("2 of 3")


def test_count_reached_without_a_single_success_is_inconclusive() -> None:
    phase, message = assess(Limits(count=2, consecutive_error_limit=4), _progress(E, E))
    assert phase is Phase.INCONCLUSIVE
    assert "none of 2" in message


def test_pending_running_and_terminating() -> None:
    assert assess(Limits(count=3), Progress())[0] is Phase.PENDING
    assert assess(Limits(), _progress(S))[0] is Phase.RUNNING
    assert assess(Limits(), _progress(S), terminating=True)[0] is Phase.SUCCESSFUL
    assert assess(Limits(), Progress(), terminating=True)[0] is Phase.INCONCLUSIVE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"count": 0}, "count"), ({"failure_limit": -1}, "failure_limit")],
)
def test_bad_limits(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        Limits(**kwargs)


@settings(max_examples=100)
@given(
    st.lists(st.sampled_from([S, F, N, E]), max_size=30),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 5),
)
def test_assess_agrees_with_the_tally(
    phases: list[Phase], failure_limit: int, inconclusive_limit: int, error_limit: int
) -> None:
    limits = Limits(
        count=len(phases) or 1,
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        consecutive_error_limit=error_limit,
    )
    progress = _progress(*phases)
    phase, _ = assess(limits, progress)
    if phases.count(F) > failure_limit:
        assert phase is Phase.FAILED
    elif phase is Phase.SUCCESSFUL:
        assert progress.successful > 0
        assert phases.count(N) <= inconclusive_limit
    assert progress.successful + progress.failed + progress.inconclusive + progress.errors == len(
        phases
    )


def test_run_verdict_is_the_worst_counted_metric() -> None:
    statuses = [
        MetricStatus("a", Phase.SUCCESSFUL, ""),
        MetricStatus("b", Phase.INCONCLUSIVE, ""),
        MetricStatus("c", Phase.FAILED, "", dry_run=True),
    ]
    assert run_verdict(statuses) is Verdict.INCONCLUSIVE
    assert run_verdict([*statuses, MetricStatus("d", Phase.ERROR, "")]) is Verdict.ERROR
    assert run_verdict([*statuses, MetricStatus("e", Phase.RUNNING, "")]) is None
    assert run_verdict([MetricStatus("c", Phase.FAILED, "", dry_run=True)]) is Verdict.PASS
    assert Phase.PENDING.verdict is None
    assert not Phase.PENDING.completed
