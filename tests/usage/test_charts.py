import pytest

from usage.charts import axis_ticks, bar_chart, column_chart

MINUTE = 60


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),  # nothing yet: still an axis to draw on
        (7, [0, 2, 4, 6, 8]),
        (100, [0, 50, 100]),
        (101, [0, 50, 100, 150]),
        (2_980, [0, 1_000, 2_000, 3_000]),
    ],
)
def test_axis_ticks_are_round_numbers_reaching_the_largest_value(maximum, ticks):
    assert axis_ticks(maximum) == ticks


def test_axis_ticks_in_minutes_are_whole_minutes_of_seconds():
    assert axis_ticks(1_200, unit=MINUTE) == [0, 300, 600, 900, 1_200]  # 0–20 min by 5
    assert axis_ticks(30, unit=MINUTE) == [0, 60]  # half a minute still gets a 1-minute axis


def test_column_heights_are_proportional_and_the_tallest_reaches_the_top_tick():
    chart = column_chart(
        [("16 Mar", 600), ("17 Mar", 1_200), ("18 Mar", 0)],
        tick_unit=MINUTE,
        tick_suffix=" min",
    )

    plot_height = chart.bottom - chart.top
    low, high, empty = chart.bars
    assert high.height == plot_height
    assert high.y == chart.top
    assert low.height == plot_height / 2
    assert low.y + low.height == chart.bottom  # bars stand on the baseline
    assert empty.height == 0
    assert [tick.label for tick in chart.ticks] == ["0 min", "5 min", "10 min", "15 min", "20 min"]
    assert chart.ticks[-1].position == chart.top


def test_columns_share_the_width_in_order_without_overlapping():
    chart = column_chart([(str(day), day * 10) for day in range(1, 32)])

    lefts = [bar.x for bar in chart.bars]
    assert lefts == sorted(lefts)
    assert all(a.x + a.width < b.x for a, b in zip(chart.bars, chart.bars[1:], strict=False))
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.right


def test_crowded_columns_label_every_other_day():
    chart = column_chart([(f"{day} Mar", 60) for day in range(1, 32)])

    shown = [bar.label for bar in chart.bars if bar.show_label]
    assert shown[:3] == ["1 Mar", "3 Mar", "5 Mar"]
    assert len(shown) == 16


def test_a_guide_line_sits_at_its_value_and_raises_the_axis_if_needed():
    chart = column_chart([("a", 100)], guide=580, guide_label="Allowance pace")

    assert chart.guide.label == "Allowance pace"
    assert chart.ticks[-1].value >= 580
    assert chart.top <= chart.guide.position < chart.bottom


def test_a_chart_without_any_value_is_empty():
    assert column_chart([("a", 0), ("b", 0)]).is_empty
    assert bar_chart([]).is_empty
    assert not bar_chart([("Ava", 1)]).is_empty


def test_bars_grow_from_the_label_column_in_proportion():
    chart = bar_chart([("Ava", 2_400), ("Max", 1_200)], tick_unit=MINUTE, tick_suffix=" min")

    ava, max_ = chart.bars
    assert ava.x == max_.x == chart.left
    assert ava.end_x == chart.right  # 40 min on a 0–40 min axis
    assert max_.width == ava.width / 2
    assert ava.y < max_.y  # in the given order, top to bottom
    assert [tick.label for tick in chart.ticks] == ["0 min", "20 min", "40 min"]


def test_many_rows_keep_the_largest_and_sum_the_rest_into_one():
    rows = [(f"Agent {n}", 100 - n) for n in range(12)]

    chart = bar_chart(rows, max_rows=8, rest_label="Others")

    assert len(chart.bars) == 8
    assert [bar.label for bar in chart.bars[:7]] == [f"Agent {n}" for n in range(7)]
    assert chart.bars[-1].label == "Others (5)"
    assert chart.bars[-1].value == sum(100 - n for n in range(7, 12))


def test_long_row_labels_are_shortened_for_the_chart_only():
    chart = bar_chart([("Front desk and after-hours overflow team", 60)])

    bar = chart.bars[0]
    assert bar.label == "Front desk and after-hours overflow team"
    assert bar.short_label.endswith("…")
    assert len(bar.short_label) <= 22
