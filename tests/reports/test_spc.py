"""Each Making Data Count special-cause rule on a series designed by hand to trigger only that rule."""

import math

import pytest

from casefind.reports.spc import xmr


def chart(values):
    return xmr([f"m{i:02d}" for i in range(len(values))], values)


def flagged(frame, rule):
    return [i for i, v in enumerate(frame[rule]) if v]


def test_limits_are_mean_plus_minus_2_66_mean_moving_range():
    values = [10, 12, 10, 12, 10, 12, 10, 12, 30]
    frame = chart(values)
    mean = 118 / 9
    mean_mr = (2 * 7 + 18) / 8  # seven ranges of 2, then 18
    assert frame["mean"].iloc[0] == pytest.approx(mean)
    assert frame["mean_moving_range"].iloc[0] == pytest.approx(4.0)
    assert frame["upper_limit"].iloc[0] == pytest.approx(mean + 2.66 * mean_mr)
    assert frame["lower_limit"].iloc[0] == pytest.approx(mean - 2.66 * mean_mr)
    assert math.isnan(frame["moving_range"].iloc[0]) and frame["moving_range"].iloc[8] == 18
    assert flagged(frame, "outside_limits") == [8]  # 30 > 23.75


def test_shift_needs_seven_points_on_one_side():
    # mean 10/11 = 0.91; the last seven points (1, 2, ...) are all above it; limits are +-11.2 wide.
    frame = chart([5, -5, 5, -5, 1, 2, 1, 2, 1, 2, 1])
    assert flagged(frame, "shift") == [4, 5, 6, 7, 8, 9, 10]
    assert flagged(frame, "special_cause") == [4, 5, 6, 7, 8, 9, 10]
    assert flagged(chart([5, -5, 5, -5, 1, 2, 1, 2, 1, 2]), "shift") == []  # only six


def test_point_on_the_mean_breaks_a_run():
    frame = chart([1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 2])  # mean exactly 2
    assert frame["mean"].iloc[0] == 2
    assert flagged(frame, "shift") == []


def test_trend_of_six_increasing_points():
    frame = chart([5, 1, 2, 3, 4, 5, 6, 2])
    assert flagged(frame, "trend") == [1, 2, 3, 4, 5, 6]
    assert flagged(frame, "special_cause") == [1, 2, 3, 4, 5, 6]
    assert flagged(chart([5, 1, 2, 3, 4, 5, 2]), "trend") == []  # five points only
    assert flagged(chart([1, 2, 3, 3, 4, 5, 6]), "trend") == []  # a tie ends the trend
    assert flagged(chart([9, 8, 7, 6, 5, 4, 9]), "trend") == [0, 1, 2, 3, 4, 5]  # decreasing


def test_two_of_three_beyond_two_sigma():
    values = [0, 1] * 10 + [3, 1, 3]
    mean = 17 / 23
    mean_mr = (19 + 6) / 22
    two_sigma_line = mean + 2 * mean_mr / 1.128
    assert two_sigma_line < 3 < mean + 2.66 * mean_mr  # the design: beyond 2 sigma, inside the limits
    frame = chart(values)
    assert frame["upper_two_sigma"].iloc[0] == pytest.approx(two_sigma_line)
    assert flagged(frame, "two_of_three") == [20, 22]
    assert flagged(frame, "outside_limits") == []


def test_missing_points_are_skipped_not_zero():
    frame = chart([1.0, float("nan"), 3.0])
    assert frame["mean"].iloc[0] == 2.0
    assert frame["mean_moving_range"].iloc[0] == 2.0
    assert math.isnan(frame["value"].iloc[1]) and not frame["special_cause"].iloc[1]


def test_common_cause_series_has_no_flags():
    frame = chart([5, 6, 5, 7, 5, 6, 4, 6, 5, 6])
    assert not frame["special_cause"].any()


def test_lower_lines_of_a_rate_chart_stop_at_zero():
    # mean 2, mean moving range 3.5: the unclipped lower limit would be 2 - 2.66 * 3.5 = -7.31
    chart = xmr([f"m{i}" for i in range(5)], [0.0, 4.0, 0.0, 4.0, 2.0])
    assert chart["lower_limit"].iloc[0] == 0.0
    assert chart["lower_two_sigma"].iloc[0] == 0.0
    assert chart["upper_limit"].iloc[0] == pytest.approx(2 + 2.66 * 3.5)
    assert not chart["outside_limits"].any()
