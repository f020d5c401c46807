import math

import pytest

from genesis.gate import Classification, Direction, Verdict, worst
from genesis.gate.verdict import finite_or_none


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(Verdict.PASS, 0), (Verdict.FAIL, 1), (Verdict.INCONCLUSIVE, 2), (Verdict.ERROR, 3)],
)
def test_exit_codes_follow_the_contract(verdict: Verdict, code: int) -> None:
    assert verdict.exit_code == code


def test_worst_ranks_fail_over_error_over_inconclusive_over_pass() -> None:
    assert worst([Verdict.PASS, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert worst([Verdict.INCONCLUSIVE, Verdict.ERROR, Verdict.PASS]) is Verdict.ERROR
    assert worst([Verdict.ERROR, Verdict.FAIL]) is Verdict.FAIL
    assert worst([Verdict.PASS]) is Verdict.PASS


def test_worst_of_nothing_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="nothing was judged"):
        worst([])


def test_classification_flags() -> None:
    failures = {c for c in Classification if c.is_failure}
    assert failures == {Classification.HIGH, Classification.LOW, Classification.WIDER}
    assert not Classification.NODATA.is_scored
    assert not Classification.ERROR.is_scored
    assert Classification.PASS.is_scored


def test_direction_watches() -> None:
    assert Direction.INCREASE.watches_increase
    assert not Direction.INCREASE.watches_decrease
    assert Direction.DECREASE.watches_decrease
    assert not Direction.DECREASE.watches_increase
    assert Direction.EITHER.watches_increase
    assert Direction.EITHER.watches_decrease


def test_finite_or_none_keeps_json_free_of_nan() -> None:
    assert finite_or_none(1.5) == 1.5
    assert finite_or_none(None) is None
    assert finite_or_none(math.nan) is None
    assert finite_or_none(-math.inf) is None
