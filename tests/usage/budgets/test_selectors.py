"""The month's spend so far and its forecast: priced like the invoice, carried on at the
month's pace weighed by the organization's week, with a band that holds the month's end."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from djmoney.money import Money

from tests.factories import (
    EmployeeFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    record_call,
)
from usage import services
from usage.budgets.selectors import spend_forecast
from usage.costs.selectors import month_spend
from usage.metering import services as metering

pytestmark = pytest.mark.django_db

USD = "USD"
MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)  # a Monday, 10:00


def usd(amount):
    return Money(Decimal(amount), USD)


def test_spend_so_far_is_the_fees_and_the_overage_with_taxes_priced_like_the_invoice(now):
    # Given Professional at $199 with 1,000 s included and $0.004/s over, one paid number,
    # and a 10% sales tax on everything
    TaxRateFactory(percentage=Decimal("10"))
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=1_000, free_phone_numbers=0), start=MARCH, now=now
    )
    employee = EmployeeFactory(organization=subscription.organization)
    PhoneNumberRateFactory()
    services.phone_number_provision(
        organization=subscription.organization,
        number="+12125550100",
        number_type="local",
        country="US",
        employee=employee,
        now=MARCH,
    )

    # When 1,250 s of calls were made
    record_call(employee=employee, seconds=1_250, connected_at=now - dt.timedelta(hours=1))

    # Then the spend is ($199 + $1.75 for the number + 250 s × $0.004) plus 10% tax
    spend = month_spend(subscription=subscription, now=now)
    assert (spend.fees, spend.overage) == (usd("220.83"), usd("1.10"))
    assert spend.total == usd("221.93")


def test_a_free_trial_spends_nothing(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=100, trial_days=14),
        start=now - dt.timedelta(days=2),
        trial=True,
        now=now,
    )
    employee = EmployeeFactory(organization=subscription.organization)
    record_call(employee=employee, seconds=5_000, connected_at=now - dt.timedelta(hours=1))

    forecast = spend_forecast(subscription=subscription, now=now)

    assert forecast.spend.is_trial
    assert forecast.spend.total == forecast.total == usd("0")


def test_without_history_the_forecast_is_the_plain_pace(now):
    # Given 15 days and 10 hours of March gone (of 31 days) and 20,000 s of overage-free use
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=0), start=MARCH, now=now
    )
    employee = EmployeeFactory(organization=subscription.organization)
    for day in range(1, 16):
        record_call(
            employee=employee,
            seconds=2_000,
            connected_at=MARCH + dt.timedelta(days=day - 1, hours=9),
        )

    # When forecast, then the month's call time is 30,000 s × 31 days / 15.42 days
    forecast = spend_forecast(subscription=subscription, now=now)

    assert not forecast.weighted
    assert forecast.projected_seconds == int(Decimal(30_000) * 744 / Decimal("370"))
    assert forecast.days_left == 16
    assert forecast.total == usd("199") + usd(Decimal("0.004") * forecast.projected_seconds).round(
        2
    )
    # Steady days: the narrowest band, a 20% spread of the days
    assert forecast.low < forecast.total < forecast.high
    assert forecast.high - forecast.low < usd("25")


def weekday_calls(employee, first_day, last_day, *, rng, now):
    """A dental practice's week: two calls each weekday morning (9:00 and 10:30), of 25 to 35
    minutes, none at weekends; records those that ended by `now`; returns the seconds of
    all of them, recorded or not, per month start."""
    reports, per_month = [], {}
    day = first_day
    while day <= last_day:
        if day.isoweekday() <= 5:
            for hour, minute in ((9, 0), (10, 30)):
                connected = day.replace(hour=hour, minute=minute)
                seconds = rng.randint(25 * 60, 35 * 60)
                month = connected.replace(day=1, hour=0, minute=0)
                per_month[month] = per_month.get(month, 0) + seconds
                if connected + dt.timedelta(seconds=seconds) <= now:
                    reports.append(
                        metering.CallReport(
                            f"call-{connected.isoformat()}",
                            employee.organization.slug,
                            employee.pk,
                            "outbound",
                            connected,
                            connected + dt.timedelta(seconds=seconds),
                        )
                    )
        day += dt.timedelta(days=1)
    metering.calls_record(reports=reports, now=now)
    return per_month


def test_the_forecast_error_against_synthetic_history_is_small_and_smaller_than_the_plain_pace():
    # Given a practice that calls only on weekdays since December, and March half gone
    december = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=0), start=december, now=NOW
    )
    employee = EmployeeFactory(organization=subscription.organization)
    per_month = weekday_calls(
        employee, december, dt.datetime(2026, 3, 31, tzinfo=dt.UTC), rng=random.Random(13), now=NOW
    )
    actual_seconds = per_month[MARCH]

    # When March is forecast on Monday the 16th at 10:00, weighed and at the plain pace
    forecast = spend_forecast(subscription=subscription, now=NOW)
    used = forecast.spend.call_seconds
    plain = int(Decimal(used) * 744 / Decimal("370"))

    # Then the weighed forecast misses the month's real call time by under 3%, the plain pace
    # by more; and the month's real spend lies within the band
    error = abs(forecast.projected_seconds - actual_seconds) / actual_seconds
    plain_error = abs(plain - actual_seconds) / actual_seconds
    assert forecast.weighted
    assert error < 0.03 < plain_error
    actual_spend = usd("199") + usd(Decimal("0.004") * actual_seconds).round(2)
    assert forecast.low <= actual_spend <= forecast.high
