"""Geometry of the server-rendered SVG charts on the usage pages.

A chart is drawn in a fixed `viewBox` that the browser scales to the page, so every
position here is in viewBox units. Values stay whole numbers (seconds); only positions are
fractional, rounded to keep the markup small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Points = Sequence[tuple[str, int]]

# Room a column label needs (e.g. "16 Mar" at 12px); narrower columns label every n-th one.
COLUMN_LABEL_WIDTH = 46
# Characters of a row label that fit beside a horizontal bar chart; the full label is the tooltip.
ROW_LABEL_CHARACTERS = 22


@dataclass(frozen=True)
class Tick:
    value: int
    position: float  # y of a column chart's gridline, x of a bar chart's
    label: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    value_label: str
    x: float
    y: float
    width: float
    height: float
    show_label: bool = True

    @property
    def short_label(self) -> str:
        if len(self.label) <= ROW_LABEL_CHARACTERS:
            return self.label
        return self.label[: ROW_LABEL_CHARACTERS - 1].rstrip() + "…"

    @property
    def center_x(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def middle_y(self) -> float:
        return round(self.y + self.height / 2, 2)

    @property
    def end_x(self) -> float:
        return round(self.x + self.width, 2)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    # The plot area, inside the axis labels.
    left: float
    top: float
    right: float
    bottom: float
    bars: list[Bar]
    ticks: list[Tick]
    guide: Tick | None = None  # a reference line, e.g. the daily pace that uses the allowance

    @property
    def is_empty(self) -> bool:
        return not any(bar.value for bar in self.bars)


def axis_ticks(maximum: int, *, unit: int = 1, count: int = 4) -> list[int]:
    """Round tick values from 0 up to at least `maximum`, in whole `unit`s: steps of 1, 2 or
    5 × 10ⁿ units, about `count` of them (0, 50, 100, 150 minutes rather than 0, 47, 94…)."""
    top = max(maximum / unit, 1)
    rough = top / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = max(1, int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)))
    return [n * step * unit for n in range(math.ceil(top / step) + 1)]


def column_chart(
    points: Points,
    *,
    width: int = 960,
    height: int = 240,
    value_label: Callable[[int], str] = str,
    tick_unit: int = 1,
    tick_suffix: str = "",
    guide: int | None = None,
    guide_label: str = "",
) -> Chart:
    """Vertical bars, one per point in order (days of a period), with a value axis on the left."""
    # A guide is labelled beside the plot, where no bar can hide it.
    left, top, right, bottom = 64.0, 12.0, width - (96.0 if guide else 8.0), height - 26.0
    values = [value for _, value in points]
    tick_values = axis_ticks(max([*values, guide or 0, 0]), unit=tick_unit)
    scale = (bottom - top) / tick_values[-1]
    slot = (right - left) / max(len(points), 1)
    bar_width = slot * 0.7
    label_every = math.ceil(COLUMN_LABEL_WIDTH / slot)
    bars = [
        Bar(
            label=label,
            value=value,
            value_label=value_label(value),
            x=round(left + index * slot + (slot - bar_width) / 2, 2),
            y=round(bottom - value * scale, 2),
            width=round(bar_width, 2),
            height=round(value * scale, 2),
            show_label=index % label_every == 0,
        )
        for index, (label, value) in enumerate(points)
    ]
    ticks = [
        Tick(value, round(bottom - value * scale, 2), f"{value // tick_unit:,}{tick_suffix}")
        for value in tick_values
    ]
    guide_tick = None
    if guide:
        guide_tick = Tick(guide, round(bottom - guide * scale, 2), guide_label)
    return Chart(width, height, left, top, right, bottom, bars, ticks, guide_tick)


def bar_chart(
    points: Points,
    *,
    width: int = 560,
    row_height: int = 30,
    label_width: int = 168,
    value_width: int = 84,
    value_label: Callable[[int], str] = str,
    tick_unit: int = 1,
    tick_suffix: str = "",
    max_rows: int = 8,
    rest_label: str = "Others",
) -> Chart:
    """Horizontal bars, one row per point in order, labels on the left and values on the
    right. Beyond `max_rows` the remaining points are summed into one last row, so a
    hundred AI employees still make a readable chart (the table beside it lists them all)."""
    rows = list(points)
    if len(rows) > max_rows:
        rest = rows[max_rows - 1 :]
        rows = [
            *rows[: max_rows - 1],
            (f"{rest_label} ({len(rest)})", sum(value for _, value in rest)),
        ]
    # viewBox positions (see the module docstring), never amounts of money
    left, top, right = label_width, 4, width - value_width
    bottom = top + row_height * max(len(rows), 1)
    height = int(bottom + 22)
    tick_values = axis_ticks(max([value for _, value in rows] or [0]), unit=tick_unit, count=3)
    scale = (right - left) / tick_values[-1]
    bar_height = row_height * 0.62
    bars = [
        Bar(
            label=label,
            value=value,
            value_label=value_label(value),
            x=left,
            y=round(top + index * row_height + (row_height - bar_height) / 2, 2),
            width=round(value * scale, 2),
            height=round(bar_height, 2),
        )
        for index, (label, value) in enumerate(rows)
    ]
    ticks = [
        Tick(value, round(left + value * scale, 2), f"{value // tick_unit:,}{tick_suffix}")
        for value in tick_values
    ]
    return Chart(width, height, left, top, right, bottom, bars, ticks)
