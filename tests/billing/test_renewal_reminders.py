"""Renewal reminders: days before each renewal (7 for monthly plans, 30 for annual ones), once
per period, with the date, the expected amount, how it is paid, and how to change or cancel."""

import datetime as dt

import pytest
import time_machine
from djmoney.money import Money

from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.lifecycle.renewal_reminders import renewal_reminders_send_if_needed
from billing.models import Notification
from billing.subscriptions import services as subscription_services
from tests.factories import (
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    card,
)
from usage import services as usage_services

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def run_job(at, committed):
    with time_machine.travel(at, tick=False), committed():
        return renewal_reminders_send_if_needed(now=at)


def reminders(organization):
    return list(Notification.objects.filter(organization=organization, kind="renewal_reminder"))


@pytest.fixture
def acme():
    """Acme Dental on Professional ($199 a month) from 1 Mar, paying by card, with New York
    sales tax, four numbers (three free) and $20.00 of credit."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    card(organization, now=START)
    TaxRateFactory()
    PhoneNumberRateFactory()
    with time_machine.travel(START, tick=False):
        SubscriptionFactory(organization=organization, start=START, now=START)
    for n in range(4):
        usage_services.phone_number_provision(
            organization=organization,
            number=f"+1415555010{n}",
            number_type="local",
            country="US",
            now=START,
        )
    invoicing_services.balance_credit_grant(
        organization=organization,
        kind="goodwill",
        amount=Money("20.00", "USD"),
        description="Sorry",
        now=START,
    )
    return organization


def test_a_monthly_subscription_is_reminded_seven_days_before_once(acme, committed, mailoutbox):
    mailoutbox.clear()
    # Eight days before: too early
    assert run_job(dt.datetime(2026, 3, 24, 8, tzinfo=dt.UTC), committed) == 0

    # Seven days before, and an hour later again
    assert run_job(dt.datetime(2026, 3, 25, 9, tzinfo=dt.UTC), committed) == 1
    assert run_job(dt.datetime(2026, 3, 25, 10, tzinfo=dt.UTC), committed) == 0

    [email] = mailoutbox
    assert email.subject == "Your subscription renews on 1 Apr 2026: $198.57 expected – Acme Dental"
    body = email.body
    # $199 + one number beyond the three free ($1.75) + 8.875% tax on both ($17.82) - $20 credit
    assert "- Professional, monthly: $199.00" in body
    assert "- Phone numbers (1 beyond the free ones), a month: $1.75" in body
    assert "- Sales tax: $17.82" in body
    assert "- Your credit balance: -$20.00" in body
    assert "- Expected total: $198.57" in body
    assert "It will be charged to Visa •••• 4242" in body
    assert "/billing/acme/plans/" in body and "/billing/acme/cancel/" in body


def test_the_next_period_is_reminded_again(acme, committed):
    run_job(dt.datetime(2026, 3, 25, 9, tzinfo=dt.UTC), committed)
    renewal = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(renewal, tick=False), committed():
        renewals.renew_subscriptions_if_needed(now=renewal)

    run_job(dt.datetime(2026, 4, 24, 10, tzinfo=dt.UTC), committed)

    assert len(reminders(acme)) == 2


def test_an_annual_plan_is_reminded_thirty_days_before(committed):
    organization = OrganizationFactory(payment_terms="invoice", net_days=30)
    with time_machine.travel(START, tick=False):
        SubscriptionFactory(
            organization=organization,
            plan=PlanFactory(interval="year", price=Money("2029.80", "USD")),
            start=START,
            now=START,
        )

    assert run_job(dt.datetime(2027, 1, 29, 23, tzinfo=dt.UTC), committed) == 0
    assert run_job(dt.datetime(2027, 1, 30, 10, tzinfo=dt.UTC), committed) == 1
    [reminder] = reminders(organization)
    assert "payable by bank transfer within 30 days" in reminder.summary


def test_a_subscription_set_to_end_is_not_reminded(acme, committed):
    subscription = acme.subscriptions.get()
    subscription_services.subscription_cancel(
        subscription=subscription, reason="Closing", now=START
    )

    assert run_job(dt.datetime(2026, 3, 25, 9, tzinfo=dt.UTC), committed) == 0
