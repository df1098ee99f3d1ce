"""Server-rendered SVG charts of call time: geometry from `usage.charts`, markup in templates."""

import datetime as dt

from django import template

from billing.web.formatting import seconds_and_minutes
from usage import charts
from usage.templatetags.usage_format import minutes

register = template.Library()

MINUTE = 60


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b}"


def _days(first: dt.date, last: dt.date) -> str:
    """`16–22 Mar`, or `30 Mar – 5 Apr` across a month's end."""
    if first.month == last.month:
        return f"{first.day}–{_day(last)}"
    return f"{_day(first)} – {_day(last)}"


@register.inclusion_tag("usage/_column_chart.html")
def daily_chart(days, *, name: str, title: str, period: str, pace: int | None = None) -> dict:
    """Call time per day, with the daily pace that would use exactly the allowance."""
    chart = charts.column_chart(
        [(_day(day), seconds) for day, seconds in days],
        value_label=seconds_and_minutes,
        tick_unit=MINUTE,
        tick_suffix=" min",
        guide=pace,
        guide_label=f"{minutes(pace)}/day" if pace else "",
    )
    return {"chart": chart, "name": name, "title": f"{title}, {period}"}


@register.inclusion_tag("usage/_bar_chart.html")
def weekly_chart(weeks, *, name: str, title: str, period: str) -> dict:
    chart = charts.bar_chart(
        [(_days(week.first_day, week.last_day), week.seconds) for week in weeks],
        value_label=minutes,
        tick_unit=MINUTE,
        tick_suffix=" min",
    )
    return {"chart": chart, "name": name, "title": f"{title}, {period}"}


@register.inclusion_tag("usage/_bar_chart.html")
def ranking_chart(rows, *, name: str, title: str, period: str) -> dict:
    """Call time per AI employee or cost center, largest first."""
    chart = charts.bar_chart(
        [(row.label, row.seconds) for row in rows],
        value_label=minutes,
        tick_unit=MINUTE,
        tick_suffix=" min",
    )
    return {"chart": chart, "name": name, "title": f"{title}, {period}"}


def _month(month: dt.date) -> str:
    return f"{month:%b %y}"


@register.inclusion_tag("usage/_column_chart.html")
def monthly_cost_chart(trends, *, name: str, title: str, currency: str) -> dict:
    """Each invoiced month's cost, in whole units of the currency on the axis."""
    chart = charts.column_chart(
        [(_month(trend.month), trend.cost_cents) for trend in trends],
        value_label=lambda cents: f"{cents / 100:,.2f} {currency}",
        tick_unit=100,
        tick_suffix=f" {currency}",
    )
    return {
        "chart": chart,
        "name": name,
        "title": title,
        "per": "month",
        "empty": "Nothing invoiced yet.",
    }


@register.inclusion_tag("usage/_column_chart.html")
def monthly_call_chart(trends, *, name: str, title: str) -> dict:
    """Call time per usage month, in minutes on the axis."""
    chart = charts.column_chart(
        [(_month(trend.month), trend.call_seconds) for trend in trends],
        value_label=seconds_and_minutes,
        tick_unit=MINUTE,
        tick_suffix=" min",
    )
    return {"chart": chart, "name": name, "title": title, "per": "month"}
