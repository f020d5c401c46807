import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.gate.mann_whitney import shift_estimate

samples = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=3,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_interval_contains_the_hodges_lehmann_estimate(
    canary: list[float], base: list[float]
) -> None:
    c, b = np.array(canary), np.array(base)
    result = shift_estimate(c, b, 0.98)
    slack = 1e-3 * max(1.0, float(np.ptp(np.concatenate([c, b]))))
    assert result.ci_low <= result.estimate + slack
    assert result.estimate <= result.ci_high + slack
    assert 0.0 <= result.p_value <= 1.0


def test_estimate_is_the_median_of_pairwise_differences() -> None:
    # As in R, the estimate is a root of the continuity-corrected statistic, which is flat
    # between the two central pairwise differences; any point there is the median.
    rng = np.random.default_rng(7)
    c, b = rng.normal(3, 1, 30), rng.normal(1, 1, 25)
    result = shift_estimate(c, b, 0.98)
    differences = np.sort(np.subtract.outer(c, b).ravel())
    middle = differences.size // 2
    assert differences[middle - 2] - 1e-3 <= result.estimate <= differences[middle + 1] + 1e-3


def test_matches_r_wilcox_test_on_a_small_example() -> None:
    # R: wilcox.test(c(10, 20, 30, 40), c(1, 2, 3, 4), conf.int = TRUE, exact = FALSE)
    # gives the interval [6, 39] and the estimate 22.5 (also Kayenta's MannWhitney tie-out).
    result = shift_estimate(np.array([10.0, 20, 30, 40]), np.array([1.0, 2, 3, 4]), 0.95)
    assert result.ci_low == pytest.approx(6.0, abs=1e-6)
    assert result.ci_high == pytest.approx(39.0, abs=1e-6)
    assert result.estimate == pytest.approx(22.5, abs=1e-6)


def test_heavy_ties_put_the_interval_on_the_steps() -> None:
    # With values on a half-unit grid the rank statistic moves in steps, so the interval ends
    # land on step points (differences that occur in the data), not between them.
    rng = np.random.default_rng(8)
    base = rng.integers(2, 8, 60) / 2.0
    canary = rng.integers(2, 8, 60) / 2.0 + 0.5
    result = shift_estimate(canary, base, 0.95)
    for end in (result.ci_low, result.ci_high):
        assert end * 2 == pytest.approx(round(end * 2), abs=1e-6)


def test_shift_is_equivariant() -> None:
    rng = np.random.default_rng(3)
    c, b = rng.lognormal(0, 0.3, 20), rng.lognormal(0, 0.3, 20)
    plain = shift_estimate(c, b, 0.98)
    moved = shift_estimate(c + 5.0, b, 0.98)
    assert moved.estimate == pytest.approx(plain.estimate + 5.0, abs=1e-3)
    assert moved.ci_low == pytest.approx(plain.ci_low + 5.0, abs=1e-3)
    assert moved.ci_high == pytest.approx(plain.ci_high + 5.0, abs=1e-3)


def test_higher_confidence_widens_the_interval() -> None:
    rng = np.random.default_rng(5)
    c, b = rng.normal(0.5, 1, 30), rng.normal(0, 1, 30)
    narrow = shift_estimate(c, b, 0.8)
    wide = shift_estimate(c, b, 0.99)
    assert wide.ci_low < narrow.ci_low
    assert wide.ci_high > narrow.ci_high


def test_interval_covers_a_known_shift_most_of_the_time() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        c, b = rng.normal(2.0, 1, 20), rng.normal(0.0, 1, 20)
        result = shift_estimate(c, b, 0.9)
        covered += result.ci_low <= 2.0 <= result.ci_high
    assert 0.84 <= covered / 200 <= 0.96


def test_all_values_tied_gives_a_zero_shift() -> None:
    result = shift_estimate(np.array([2.0, 2.0, 2.0]), np.array([2.0, 2.0]), 0.98)
    assert result.estimate == 0.0
    assert result.ci_low == 0.0
    assert result.ci_high == 0.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_confidence_must_be_a_probability(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        shift_estimate(np.array([1.0, 2.0]), np.array([1.0, 3.0]), confidence)


def test_needs_two_values_per_side() -> None:
    with pytest.raises(ValueError, match="at least two"):
        shift_estimate(np.array([1.0]), np.array([1.0, 2.0]), 0.98)
