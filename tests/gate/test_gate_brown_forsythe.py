import numpy as np
import pytest

from genesis.gate.brown_forsythe import compare_spread, spread_ratio


def test_spread_ratio() -> None:
    assert spread_ratio(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == 2.0
    assert spread_ratio(np.array([1.0, 1.0]), np.array([2.0, 2.0])) is None
    assert spread_ratio(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == float("inf")


@pytest.mark.parametrize(
    ("canary", "baseline", "p_value", "ratio"),
    [
        ([1.0, 3.0, 1.0, 3.0], [5.0, 7.0, 5.0, 7.0], 1.0, 1.0),  # equal constant deviations
        ([1.0, 5.0, 1.0, 5.0], [5.0, 7.0, 5.0, 7.0], 0.0, 2.0),  # separated perfectly
        ([1.0, 5.0, 1.0, 5.0], [5.0, 5.0, 5.0, 5.0], 0.0, float("inf")),  # flat baseline
        ([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], 1.0, None),  # nothing varies
    ],
)
def test_degenerate_inputs_have_plain_answers(
    canary: list[float], baseline: list[float], p_value: float, ratio: float | None
) -> None:
    result = compare_spread(np.array(canary), np.array(baseline))
    assert result.p_value == p_value
    assert result.ratio == ratio


def test_a_wider_canary_is_significant() -> None:
    rng = np.random.default_rng(2)
    result = compare_spread(rng.normal(0, 5, 40), rng.normal(0, 1, 40))
    assert result.p_value < 0.001
    assert result.ratio is not None
    assert result.ratio > 3


def test_needs_two_values_per_side() -> None:
    with pytest.raises(ValueError, match="at least two"):
        compare_spread(np.array([1.0]), np.array([1.0, 2.0]))
