import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.lifecycle import renewals
from billing.lifecycle import services as lifecycle_services
from billing.models import Plan
from tests.factories import (
    MAR_16,
    EmployeeFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    record_call,
    renewal_ready,
)
from usage.costs import selectors

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def usd(amount):
    return Money(Decimal(amount), "USD")


def described(lines):
    return [
        (line.kind, line.description, line.quantity, line.unit_price, line.amount, line.details)
        for line in lines
    ]


def subscribe(plan=None, **kwargs):
    return SubscriptionFactory(
        plan=plan or PlanFactory(),
        organization=OrganizationFactory(),
        start=APRIL,
        now=APRIL,
        **kwargs,
    )


def use(subscription, seconds, at):
    employee = EmployeeFactory(organization=subscription.organization, created_at=APRIL)
    for n, offset in enumerate(range(0, seconds, 6 * 3600)):
        record_call(
            employee=employee,
            seconds=min(6 * 3600, seconds - offset),
            connected_at=at + dt.timedelta(minutes=n),
            call_id=f"use-{employee.pk}-{at.isoformat()}-{n}",
        )


class TestTheProjectionOfAFinishedMonth:
    def test_is_the_invoice_renewal_then_issues(self):
        # Given a month with a fee, call overage, numbers, a coupon, two taxes and credit
        subscription = renewal_ready()
        month_end = subscription.usage_period_end
        assert month_end == dt.datetime(2026, 3, 16, tzinfo=dt.UTC)

        # When the month has ended, the upcoming invoice is read, then renewal runs
        with time_machine.travel(month_end, tick=False):
            upcoming = selectors.upcoming_invoice(
                organization=subscription.organization, now=month_end
            )
            [invoice] = renewals.subscription_renew_if_needed(
                subscription_id=subscription.pk, now=month_end
            )

        # Then the projection, line by line, is the invoice, and so is the use so far
        issued = list(invoice.lines.order_by("position"))
        assert described(upcoming.projected.lines) == described(issued)
        assert described(upcoming.so_far.lines) == described(issued)
        kinds = {line.kind for line in issued}
        assert {
            "subscription",
            "overage_calls",
            "phone_number",
            "discount",
            "tax",
            "credit",
        } <= kinds
        assert (upcoming.projected.total, upcoming.so_far.total) == (invoice.total, invoice.total)
        assert upcoming.projected.subtotal == invoice.subtotal
        assert upcoming.projected.tax_total == invoice.tax_total
        assert upcoming.projected.credit_applied == invoice.credit_applied
        assert (upcoming.kind, upcoming.period) == (invoice.kind, invoice.period)

    def test_reading_it_writes_nothing(self):
        subscription = renewal_ready()
        organization = subscription.organization
        counts = (
            organization.invoices.count(),
            organization.balance_entries.count(),
            organization.discounts.get().periods_used,
        )

        selectors.upcoming_invoice(organization=organization, now=MAR_16)

        assert counts == (
            organization.invoices.count(),
            organization.balance_entries.count(),
            organization.discounts.get().periods_used,
        )


class TestSoFarAndProjected:
    def test_mid_month_the_overage_is_projected_at_the_month_pace(self):
        # Given Professional ($199, 180,000 s, $0.004/s) used 100,000 s by the middle of April
        subscription = subscribe()
        use(subscription, 100_000, APRIL + dt.timedelta(days=1))
        middle = APRIL + dt.timedelta(days=15)

        # When the upcoming invoice is read at the middle of the month
        upcoming = selectors.upcoming_invoice(organization=subscription.organization, now=middle)

        # Then so far only May's fee is due; at this pace April ends 20,000 s over
        assert [(row.kind, row.so_far, row.projected) for row in upcoming.rows] == [
            ("subscription", usd("199.00"), usd("199.00")),
            ("overage_calls", None, usd("80.00")),
        ]
        assert (upcoming.so_far.total, upcoming.projected.total) == (usd("199.00"), usd("279.00"))
        assert upcoming.issued_at == MAY

    def test_the_projection_stops_at_the_overage_cap(self):
        plan = PlanFactory(included_call_seconds=1_000, overage_cap=usd("50.00"))
        subscription = subscribe(plan)
        use(subscription, 10_000, APRIL + dt.timedelta(days=1))

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=3)
        )

        [overage] = [row for row in upcoming.rows if row.kind == "overage_calls"]
        assert overage.so_far == usd("36.00")
        assert overage.projected == usd("50.00")
        assert "capped at $50.00" in upcoming.projected.lines[1].description

    def test_taxes_follow_the_projection(self):
        TaxRateFactory(percentage=Decimal("10"))
        subscription = subscribe()
        subscription.organization.country = "US"
        subscription.organization.save()
        use(subscription, 100_000, APRIL + dt.timedelta(days=1))

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=15)
        )

        [tax] = [row for row in upcoming.rows if row.kind == "tax"]
        assert (tax.so_far, tax.projected) == (usd("19.90"), usd("27.90"))
        assert (upcoming.so_far.total, upcoming.projected.total) == (usd("218.90"), usd("306.90"))


class TestWhichInvoiceComesNext:
    def test_an_upgrade_proration_waits_on_the_next_invoice(self):
        subscription = subscribe(PlanFactory(price=usd("49.00"), name="Starter"))
        lifecycle_services.subscription_plan_change(
            subscription=subscription,
            plan=PlanFactory(price=usd("199.00")),
            now=APRIL + dt.timedelta(days=15),
        )

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=16)
        )

        assert [row.kind for row in upcoming.rows] == ["subscription", "proration", "proration"]
        assert upcoming.rows[0].description == "Professional plan (monthly), 1 May – 31 May 2026"

    def test_a_subscription_set_to_end_has_a_final_invoice_of_its_usage(self):
        subscription = subscribe()
        subscription.cancel_at_period_end = True
        subscription.save()
        use(subscription, 190_000, APRIL + dt.timedelta(days=1))

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=29, hours=23)
        )

        assert upcoming.kind == "final"
        assert [row.kind for row in upcoming.rows] == ["overage_calls"]

    def test_an_annual_plan_invoices_the_usage_month(self):
        plan = PlanFactory(interval="year", price=usd("1990.00"))
        subscription = subscribe(plan)

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=3)
        )

        assert (upcoming.kind, upcoming.so_far.total, upcoming.issued_at) == (
            "usage",
            usd("0.00"),
            MAY,
        )

    def test_during_a_trial_the_first_period_fee_and_nothing_of_the_trial(self):
        subscription = SubscriptionFactory(
            plan=PlanFactory(trial_days=14), start=APRIL, now=APRIL, trial=True
        )
        use(subscription, 500_000, APRIL + dt.timedelta(days=1))

        upcoming = selectors.upcoming_invoice(
            organization=subscription.organization, now=APRIL + dt.timedelta(days=2)
        )

        assert [(row.kind, row.projected) for row in upcoming.rows] == [
            ("subscription", usd("199.00"))
        ]
        assert upcoming.usage is None

    def test_without_a_live_subscription_there_is_none(self):
        assert selectors.upcoming_invoice(organization=OrganizationFactory(), now=APRIL) is None


class TestMonthSpend:
    def test_at_the_months_end_it_is_the_renewal_invoice_before_credits(self):
        # Given a month with a fee, call overage, numbers, a 10% coupon, two taxes and credit
        subscription = renewal_ready()
        month_end = subscription.usage_period_end
        last_second = month_end - dt.timedelta(seconds=1)

        # When the month's spend is read in its last second, then renewal runs
        spend = selectors.month_spend(subscription=subscription, now=last_second)
        with time_machine.travel(month_end, tick=False):
            [invoice] = renewals.subscription_renew_if_needed(
                subscription_id=subscription.pk, now=month_end
            )

        # Then the spend is the invoice's amount after the discount, with taxes, before the
        # $25.00 of credit that pays part of it
        assert invoice.credit_applied == usd("25.00")
        assert spend.period.end == month_end
        assert spend.total == invoice.subtotal + invoice.tax_total
        assert spend.total == invoice.total + invoice.credit_applied
        # and without the 2,400 s of overage it would cost the fees alone, taxed alike
        assert spend.at(0) == spend.fees < spend.total

    def test_an_annual_plan_spends_its_monthly_equivalent_and_a_trial_nothing(self):
        annual = subscribe(PlanFactory(price=usd("1200.00"), interval=Plan.Interval.YEAR))
        trial = subscribe(PlanFactory(trial_days=14), trial=True)
        use(trial, 50_000, APRIL + dt.timedelta(days=1))

        annual_spend = selectors.month_spend(subscription=annual, now=APRIL + dt.timedelta(days=3))
        trial_spend = selectors.month_spend(subscription=trial, now=APRIL + dt.timedelta(days=3))

        assert annual_spend.total == usd("100.00")
        assert trial_spend.is_trial
        assert trial_spend.total == trial_spend.at(10**6) == usd("0")
