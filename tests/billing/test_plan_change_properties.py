"""Whatever sequence of upgrades and downgrades an organization makes, it pays exactly the
time-weighted price of the plans it held (each proration line rounded once, to the cent)."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from billing.lifecycle import renewals
from billing.lifecycle import services as lifecycle_services
from billing.models import InvoiceLine, Plan
from billing.subscriptions import periods
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory

UTC = dt.UTC
START = dt.datetime(2026, 1, 31, tzinfo=UTC)  # an anchor on the 31st: months of 28–31 days
MONTHS = 4
END = periods.boundary(START, UTC, MONTHS)
TIERS = [
    (Plan.Tier.STARTER, "49.00"),
    (Plan.Tier.PROFESSIONAL, "199.00"),
    (Plan.Tier.BUSINESS, "799.00"),
    (Plan.Tier.ENTERPRISE, "1333.33"),
]

changes = st.lists(
    st.tuples(
        # any moment inside the four months, to the second
        st.integers(min_value=1, max_value=int((END - START).total_seconds()) - 1),
        st.integers(min_value=0, max_value=len(TIERS) - 1),
    ),
    max_size=8,
)


def share(part: dt.timedelta, whole: dt.timedelta) -> Fraction:
    microsecond = dt.timedelta(microseconds=1)
    return Fraction(part // microsecond, whole // microsecond)


def expected_cost(initial: int, events: list[tuple[dt.datetime, int]], prices) -> Fraction:
    """The price of the plans held, weighted by the share of each period held: an upgrade
    counts from its moment, a downgrade from the next period (a later upgrade calls it off)."""
    total = Fraction(0)
    held, scheduled = initial, None
    for month in range(MONTHS):
        period = periods.nth_period(START, UTC, 1, month)
        if scheduled is not None:
            held, scheduled = scheduled, None
        cursor = period.start
        for at, target in events:
            if at not in period or target == held:
                continue
            if target > held:
                total += prices[held] * share(at - cursor, period.end - period.start)
                held, cursor, scheduled = target, at, None
            else:
                scheduled = target
        total += prices[held] * share(period.end - cursor, period.end - period.start)
    return total


class TestTimeWeightedPrice(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(initial=st.integers(min_value=0, max_value=len(TIERS) - 1), raw_changes=changes)
    def test_total_charged_is_the_time_weighted_price(self, initial, raw_changes):
        plans = [
            PlanFactory(name=tier.label, tier=tier, price=Money(Decimal(price), "USD"))
            for tier, price in TIERS
        ]
        prices = [Fraction(Decimal(price)) for _, price in TIERS]
        subscription = SubscriptionFactory(
            organization=OrganizationFactory(), plan=plans[initial], start=START, now=START
        )
        events = sorted((START + dt.timedelta(seconds=s), target) for s, target in raw_changes)

        for at, target in events:
            renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=at)
            subscription.refresh_from_db()
            if plans[target] != subscription.plan:
                lifecycle_services.subscription_plan_change(
                    subscription=subscription, plan=plans[target], now=at
                )
        renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=END)

        charged = InvoiceLine.objects.filter(
            invoice__subscription=subscription,
            kind__in=[InvoiceLine.Kind.SUBSCRIPTION, InvoiceLine.Kind.PRORATION],
            period_start__lt=END,  # the fee for the period after END is not part of it
        )
        prorations = charged.filter(kind=InvoiceLine.Kind.PRORATION).count()
        total = sum(Fraction(line.amount.amount) for line in charged)
        exact = expected_cost(initial, events, prices)
        # Each proration line is rounded once, half a cent at most
        assert abs(total - exact) <= Fraction(prorations, 200), (total, float(exact))
