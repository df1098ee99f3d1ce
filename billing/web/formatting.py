"""How amounts, rates, allowances and periods read on every app's pages, e-mails and invoices:
the functions behind the `billing_format` template library."""

from zoneinfo import ZoneInfo

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html

from billing.money import format_rate


def rate(value) -> str:
    """A per-unit price with every significant digit: `$0.004`, never `$0.00`."""
    return "" if value is None else format_rate(value)


def allowance(value, unit: str = "") -> str:
    """`1,200` or `Unlimited` (an empty allowance has no limit)."""
    if value is None:
        return "Unlimited"
    return f"{intcomma(value)}{f' {unit}' if unit else ''}"


def seconds_and_minutes(seconds) -> str:
    """`18,000 s (300 min)`: call time in the unit plans count and the one people think in."""
    if seconds is None:
        return "Unlimited"
    minutes = seconds / 60
    shown = f"{minutes:,.0f}" if seconds % 60 == 0 else f"{minutes:,.1f}"
    return f"{intcomma(seconds)} s ({shown} min)"


def period_label(period, timezone_name: str) -> str:
    """`15 Mar – 14 Apr 2026`: the days a half-open period covers, in that timezone."""
    if period is None:
        return ""
    return period.label(ZoneInfo(timezone_name or "UTC"))


def difference(amount) -> str:
    """`$600.00 less`, `$80.00 more` or `the same`: an amount against another."""
    if amount is None:
        return ""
    if amount.amount == 0:
        return "the same"
    return f"{abs(amount)} {'more' if amount.amount > 0 else 'less'}"


def subscription_status(subscription) -> str:
    """The status badge: `Active`, `Past due`…, and for a subscription set to end, its last
    day in the organization's timezone (`Ends 14 Dec`, `Trial ends 14 Dec`) instead of a
    status that says it goes on."""
    label, key = subscription.get_status_display(), subscription.status
    if subscription.cancel_at_period_end and subscription.status != "canceled":
        last_day = subscription.billing_period.last_day(subscription.tzinfo)
        ends = f"{last_day.day} {last_day:%b}"
        key = "ending"
        if subscription.status == "trialing":
            label = f"Trial ends {ends}"
        elif subscription.status == "active":
            label = f"Ends {ends}"
        else:
            label = f"{label} · ends {ends}"
    return format_html('<span class="status status-{}">{}</span>', key, label)
