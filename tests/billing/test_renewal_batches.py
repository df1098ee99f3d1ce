"""The renewal job reads what it needs for a chunk of due subscriptions at once: the
invoices are the ones renewing each alone would issue, for a fixed small number of queries
per subscription."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.models import Coupon, Invoice, InvoiceLine, TaxRate
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    record_call,
)
from tests.helpers import APRIL, MAY, invoice_lines, subscribe, usd, utc
from usage import services as usage_services
from usage.models import CostShare, UsageCounter

pytestmark = pytest.mark.django_db

# Per subscription: its lock; the month's counter closed and read (one statement); the
# subscription and its history; the invoice, its number (two statements on SQLite, one on
# PostgreSQL) and its lines; its cost split. The task queued once it commits (its charge,
# then its notice) comes on top: one insert into the task queue.
QUERIES_PER_SUBSCRIPTION = 9


@pytest.fixture(autouse=True)
def number_rate():
    PhoneNumberRateFactory(monthly_price=usd("3.00"), regulatory_fee=usd("0.00"))


def a_customer(n: int):
    """Subscribed on 1 Apr, with a number held all April and one from 16 April."""
    subscription = subscribe(
        PlanFactory(free_phone_numbers=0), OrganizationFactory(name=f"Clinic {n}")
    )
    for suffix, at in (("0", APRIL), ("1", utc(2026, 4, 16))):
        usage_services.phone_number_provision(
            organization=subscription.organization,
            number=f"+1212555{n:03d}{suffix}",
            number_type="local",
            country="US",
            now=at,
        )
    return subscription


def test_twenty_due_subscriptions_cost_a_fixed_number_of_queries_each():
    # Given twenty subscriptions due on 1 May, with phone numbers and usage in April
    subscriptions = [a_customer(n) for n in range(20)]
    UsageCounter.objects.bulk_create(
        UsageCounter(
            organization=subscription.organization,
            period_start=APRIL,
            period_end=MAY,
            call_seconds=200_000,
        )
        for subscription in subscriptions
    )

    # When the job renews them
    with CaptureQueriesContext(connection) as queries:
        issued = renewals.renew_subscriptions_if_needed(now=MAY)

    # Then each got its invoice, for at most the fixed number of queries each
    assert issued == 20
    assert all(subscription.invoices.count() == 2 for subscription in subscriptions)
    # (The test's savepoints stand for each renewal's transaction, which costs no query.)
    statements = [
        query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]
    ]
    assert len(statements) / 20 <= QUERIES_PER_SUBSCRIPTION + 0.5  # + the chunk's reads


def test_each_subscription_of_a_chunk_gets_its_own_discount_credit_taxes_and_split():
    # Given, due together: one with a coupon, one with credit, one in New York, one whose
    # AI employee answered calls, and one with none of these
    TaxRate.objects.create(
        name="NY sales tax",
        country="US",
        region="NY",
        percentage=Decimal("8.875"),
        applies_to=list(InvoiceLine.CHARGES),
    )
    coupon = Coupon.objects.create(
        code="welcome", name="Welcome", percent_off=Decimal("20"), duration="once"
    )
    discounted, credited, taxed, staffed, plain = (a_customer(n) for n in range(5))
    invoicing_services.discount_apply(
        organization=discounted.organization, coupon=coupon, now=APRIL
    )
    invoicing_services.balance_credit_grant(
        organization=credited.organization,
        kind="goodwill",
        amount=usd("50.00"),
        description="Outage in March",
        now=APRIL,
    )
    taxed.organization.region = "NY"
    taxed.organization.save()
    employee = EmployeeFactory(organization=staffed.organization, cost_center="Front desk")
    record_call(employee=employee, seconds=600, connected_at=utc(2026, 4, 3), call_id="c-1")

    # When the job renews them in one chunk
    renewals.renew_subscriptions_if_needed(now=MAY)

    # Then each invoice is what renewing it alone issues
    def may_invoice(subscription) -> Invoice:
        return subscription.invoices.get(period_start=MAY)

    assert invoice_lines(may_invoice(discounted), "discount") == [
        ("Discount: Welcome (20% off, once)", usd("-40.70"))
    ]
    assert may_invoice(credited).credit_applied == usd("50.00")
    assert [line[0] for line in invoice_lines(may_invoice(taxed), "tax")] == [
        "NY sales tax 8.875% of $203.50"
    ]
    assert invoice_lines(may_invoice(plain), "tax") == []
    assert [
        (share.cost_center, share.employee_name, share.call_seconds)
        for share in CostShare.objects.filter(invoice=may_invoice(staffed))
    ] == [("", "", 0), ("Front desk", employee.name, 600)]  # its numbers answer no one
    for subscription in (discounted, credited, taxed, staffed, plain):
        assert [
            amount for _, amount in invoice_lines(may_invoice(subscription), "phone_number")
        ] == [
            usd("3.00"),
            usd("1.50"),
        ]
