"""Property: whatever the lines, discount, taxes and credit, an invoice's total is the sum of
its rounded lines, and its parts add up."""

import datetime as dt
from decimal import Decimal

from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from billing import periods, services
from billing.models import Coupon, InvoiceLine, TaxRate
from tests.factories import OrganizationFactory

APRIL = periods.Period(
    dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
)
KINDS = [kind for kind in InvoiceLine.CHARGES if kind != InvoiceLine.Kind.ADJUSTMENT]

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=6)
quantities = st.integers(min_value=1, max_value=200_000)
lines = st.lists(st.tuples(st.sampled_from(KINDS), amounts, quantities), min_size=1, max_size=12)


class TestInvoiceTotals(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        drafts=lines,
        percent_off=st.one_of(
            st.none(), st.decimals(min_value=Decimal("1"), max_value=Decimal("100"), places=2)
        ),
        tax=st.decimals(min_value=Decimal("0"), max_value=Decimal("30"), places=3),
        phone_fee=st.decimals(min_value=Decimal("0"), max_value=Decimal("10"), places=3),
        credit=st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2),
    )
    def test_total_is_the_sum_of_the_lines(self, drafts, percent_off, tax, phone_fee, credit):
        organization = OrganizationFactory(country="US", region="NY")
        TaxRate.objects.create(
            name="Sales tax", country="US", percentage=tax, applies_to=list(InvoiceLine.CHARGES)
        )
        TaxRate.objects.create(
            name="Telecom fee",
            country="US",
            region="NY",
            percentage=phone_fee,
            applies_to=["phone_number"],
        )
        if percent_off is not None:
            coupon = Coupon.objects.create(
                code=f"c{organization.pk}", name="Promo", percent_off=percent_off
            )
            services.discount_apply(organization=organization, coupon=coupon, now=APRIL.start)
        if credit:
            services.balance_credit_grant(
                organization=organization,
                kind="goodwill",
                amount=Money(credit, "USD"),
                description="Credit",
                now=APRIL.start,
            )

        invoice = services.invoice_issue(
            organization=organization,
            subscription=None,
            kind="subscription",
            period=APRIL,
            lines=[
                services.LineDraft(kind, f"Line {n}", Money(unit, "USD"), quantity=quantity)
                for n, (kind, unit, quantity) in enumerate(drafts)
            ],
            now=APRIL.start,
        )

        saved = list(invoice.lines.all())
        assert all(
            line.amount.amount == line.amount.amount.quantize(Decimal("0.01")) for line in saved
        )
        assert invoice.total == sum((line.amount for line in saved), Money(0, "USD"))
        assert invoice.total == invoice.subtotal + invoice.tax_total - invoice.credit_applied
        assert invoice.total.amount >= 0
        assert invoice.credit_applied <= Money(credit, "USD")
        assert (
            services.organization_balance(organization=organization)
            == Money(credit, "USD") - invoice.credit_applied
        )
