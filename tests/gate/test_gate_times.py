"""Times for `gate retro --from/--to`: every accepted form, and clear refusals."""

import pytest

from genesis.gate.times import parse_time, parse_window

NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-10m", NOW - 600),
        ("now-1h30m", NOW - 5400),
        ("now - 30s", NOW - 30),
        ("1714564000", 1714564000.0),
        ("1714564000.5", 1714564000.5),
        ("2024-05-01T12:00:00Z", NOW),
        ("2024-05-01T14:00:00+02:00", NOW),
        ("2024-05-01T11:59:30.5Z", NOW - 29.5),
    ],
)
def test_accepted_forms(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-10 minutes", "not a relative time"),
        ("yesterday", "is not a time; use RFC 3339"),
        ("2024-05-01T12:00:00", "has no time zone"),
    ],
)
def test_refusals_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text, NOW)


def test_window_order_and_the_future() -> None:
    assert parse_window("-10m", "now", NOW) == (NOW - 600, NOW)
    with pytest.raises(ValueError, match="must be later than --from"):
        parse_window("now", "-10m", NOW)
    with pytest.raises(ValueError, match="in the future"):
        parse_window("-10m", str(NOW + 60), NOW)
