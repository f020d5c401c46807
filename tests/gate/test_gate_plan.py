"""The pure pieces of a gate run: its schedule, answers turned into inputs, the verdict."""

import math
import textwrap
from dataclasses import replace

import pytest

from genesis.gate.answers import counts, pooled, total, vector, vectors_at
from genesis.gate.measurement import MetricStatus, Phase
from genesis.gate.outcome import NOTHING_TO_JUDGE, combine
from genesis.gate.plan import Mode, live_plan, retro_plan
from genesis.gate.prometheus import Sample, Series
from genesis.gate.spec import builtin, parse
from genesis.gate.verdict import Judgment, Verdict

SPEC = parse(
    textwrap.dedent(
        """\
        window: 2m
        interval: 30s
        count: 3
        initialDelay: 10s
        metrics:
          - name: errors
            query: vector(0)
            failureCondition: result[0] > 1
          - name: slow-check
            query: vector(0)
            successCondition: result[0] < 1
            interval: 1m
            count: 2
          - name: latency
            compare: {query: up}
        """
    )
)
CHECKS_ONLY = parse("metrics: [{name: a, query: up, successCondition: 'result[0] == 1'}]")


def test_live_plan_measures_after_the_delay_and_compares_the_window_after_it() -> None:
    plan = live_plan(SPEC, 1000.0)
    assert plan.mode is Mode.LIVE
    errors, slow = plan.checks
    assert errors.times == (1010.0, 1040.0, 1070.0)
    assert slow.times == (1010.0, 1070.0)
    assert slow.interval == 60
    assert plan.comparison == (1010.0, 1130.0)
    assert plan.end == 1130.0
    assert plan.window_variable == "2m"


def test_builtin_live_run_takes_five_and_a_half_minutes() -> None:
    assert live_plan(builtin(), 0.0).end == 330.0


def test_retro_plan_fits_the_window_and_compares_all_of_it() -> None:
    plan = retro_plan(SPEC, 0.0, 45.0)
    errors, slow = plan.checks
    assert errors.times == (0.0, 30.0)  # a third measurement would be past the window
    assert slow.times == (0.0,)
    assert plan.comparison == (0.0, 45.0)
    assert plan.window_variable == "45s"
    assert retro_plan(SPEC, 0.0, 600.0).checks[0].times == (0.0, 30.0, 60.0)
    with pytest.raises(ValueError, match="must end after it starts"):
        retro_plan(SPEC, 10.0, 10.0)


def test_a_plan_without_comparisons() -> None:
    plan = live_plan(CHECKS_ONLY, 0.0)
    assert plan.comparison is None
    assert plan.window_variable is None
    assert plan.end == 240.0  # five checks a minute apart, the first at once


# --- answers ---------------------------------------------------------------------------------


def test_answers_become_vectors_series_and_counts() -> None:
    samples = [Sample({"a": "1"}, 10.0, 0.5), Sample({"a": "2"}, 10.0, 1.5)]
    assert vector(samples) == (0.5, 1.5)
    assert vector([]) == ()
    one = Series({"i": "1"}, ((0.0, 1.0), (2.0, 3.0)))
    two = Series({"i": "2"}, ((1.0, 2.0),))
    assert pooled([one, two]) == [1.0, 2.0, 3.0]
    assert total([], "events") == 0.0
    assert counts([], samples).total == 2.0
    with pytest.raises(ValueError, match="not a count"):
        total([Sample({}, 0.0, math.nan)], "total")


def test_range_points_are_matched_to_planned_times_by_step() -> None:
    series = [
        Series({}, ((100.0, 1.0), (130.0000001, 2.0))),
        Series({}, ((160.0, 9.0),)),
        Series({}, ((999.0, 5.0),)),  # not a planned time
    ]
    assert vectors_at(series, (100.0, 130.0, 160.0, 190.0), 100.0, 30.0) == [
        (1.0,),
        (2.0,),
        (9.0,),
        (),
    ]


# --- outcome ---------------------------------------------------------------------------------


def _status(name: str, phase: Phase, dry_run: bool = False) -> MetricStatus:
    return MetricStatus(name, phase, f"{phase.value.lower()} message", dry_run)


PASSING = Judgment(Verdict.PASS, 100.0, "score 100.0: every metric passed", ())


def test_the_worst_of_checks_and_comparison_decides() -> None:
    combined = combine(PASSING, [_status("a", Phase.SUCCESSFUL), _status("b", Phase.FAILED)])
    assert combined.verdict is Verdict.FAIL
    assert combined.reason == "threshold checks: b: Failed, failed message"
    assert combined.score == 100.0
    combined = combine(PASSING, [_status("a", Phase.SUCCESSFUL)])
    assert combined == replace(PASSING, reason="comparison: " + PASSING.reason)


def test_a_failed_comparison_outranks_inconclusive_checks() -> None:
    failing = Judgment(Verdict.FAIL, 0.0, "critical metric failed: x", ())
    combined = combine(failing, [_status("a", Phase.INCONCLUSIVE)])
    assert combined.verdict is Verdict.FAIL
    assert combined.reason == "comparison: critical metric failed: x"


def test_checks_only_scores_the_share_of_successes_and_ignores_dry_runs() -> None:
    combined = combine(
        None,
        [
            _status("a", Phase.SUCCESSFUL),
            _status("b", Phase.INCONCLUSIVE),
            _status("c", Phase.FAILED, dry_run=True),
        ],
    )
    assert combined.verdict is Verdict.INCONCLUSIVE
    assert combined.score == 50.0
    assert "b: Inconclusive" in combined.reason
    assert "c:" not in combined.reason
    assert combine(None, [_status("a", Phase.SUCCESSFUL)]).verdict is Verdict.PASS


def test_nothing_counted_is_an_error_and_unfinished_checks_count_for_nothing() -> None:
    assert combine(None, [_status("a", Phase.FAILED, dry_run=True)]).reason == NOTHING_TO_JUDGE
    assert combine(None, []).verdict is Verdict.ERROR
    stopped = combine(None, [_status("a", Phase.FAILED), _status("b", Phase.RUNNING)])
    assert stopped.verdict is Verdict.FAIL
    assert combine(None, [_status("b", Phase.RUNNING)]).verdict is Verdict.ERROR
