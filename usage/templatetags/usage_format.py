"""How call time, storage and allowances read on the usage pages."""

from decimal import Decimal

from django import template

from billing.money import format_rate
from usage import selectors
from usage.selectors import Allowance

register = template.Library()

# From this share of an allowance on, its meter turns amber.
NEARLY_USED_PERCENT = 80


@register.filter
def minutes(seconds: int | None) -> str:
    """`20 min`, `20.5 min`: call time in the unit people think in, for charts and tiles."""
    if seconds is None:
        return ""
    value = (Decimal(seconds) / 60).quantize(Decimal("0.1"))
    return f"{value:,.0f} min" if value == value.to_integral_value() else f"{value:,.1f} min"


@register.filter
def gibibytes(size_in_bytes: int | None) -> str:
    """`1.25 GiB`, two decimals, in the unit storage is sold and billed in."""
    if size_in_bytes is None:
        return ""
    return selectors.format_gibibytes(size_in_bytes)


@register.filter
def employees_active(quota: Allowance) -> str:
    """`3 of 15 AI employees active`, the quota people check before adding one."""
    if quota.limit is None:
        noun = "AI employee" if quota.used == 1 else "AI employees"
        return f"{quota.used} {noun} active (no limit)"
    return f"{quota.used} of {quota.limit} AI employees active"


@register.filter
def meter_width(percent: int | None) -> int:
    """A meter's filled share: a period past its allowance shows a full bar, not a longer one."""
    return min(max(percent or 0, 0), 100)


@register.filter
def meter_level(allowance: Allowance) -> str:
    """`over` past the allowance, `nearly` close to it: the meter's colour."""
    if allowance.over:
        return "over"
    if allowance.percent is not None and allowance.percent >= NEARLY_USED_PERCENT:
        return "nearly"
    return ""


@register.filter
def share(value: int, total: int) -> str:
    """`62%`: a row's part of the period's call time."""
    if not total:
        return "–"
    return f"{round(Decimal(value) * 100 / total)}%"


@register.simple_tag
def employee_quota(organization, plan) -> str:
    """`3 of 15 AI employees active` on pages whose view reads no usage (one query)."""
    active = selectors.active_employee_count(organization=organization)
    return employees_active(Allowance(active, plan.max_active_employees if plan else None))


@register.filter
def whole_minutes(seconds: int) -> str:
    """`1,234`: whole minutes, never rounded up, so call time left is not overstated."""
    return f"{seconds // 60:,}"


@register.filter
def call_time_left(summary: selectors.UsageSummary) -> str:
    """The call-time headline: `1,234 min left of 3,000 included, then $0.004/s` on a plan
    that charges overage, `… then calls pause` on one that blocks, `Unlimited call time`."""
    plan, allowance = summary.plan, summary.call_seconds
    if allowance.limit is None:
        return "Unlimited call time"
    left = max(allowance.limit - allowance.used, 0)
    headline = f"{whole_minutes(left)} min left of {whole_minutes(allowance.limit)} included"
    if not plan.charges_overage:
        return f"{headline}, then calls pause"
    headline += f", then {format_rate(plan.overage_rate_per_second)}/s"
    if plan.overage_cap is not None:
        headline += f" up to {plan.overage_cap}"
    return headline
