"""Properties of every invoice, whatever its charges, proration credits, discount, taxes and
the customer's balance: its total is the sum of its rounded lines and never negative, every
active tax rate is one line computed on its own taxable amount, and money in equals money
out: what the lines net to is paid by the total and the balance, or carried to the balance."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from billing.invoicing import pricing as pricing
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.models import BalanceEntry, Coupon, InvoiceLine, TaxRate
from billing.subscriptions import periods
from tests.factories import OrganizationFactory

APRIL = periods.Period(
    dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
)
CENT = Decimal("0.01")
KINDS = [kind for kind in InvoiceLine.CHARGES if kind != InvoiceLine.Kind.PRORATION]

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=6)
quantities = st.integers(min_value=1, max_value=200_000)
charges = st.lists(st.tuples(st.sampled_from(KINDS), amounts, quantities), max_size=8)
# Unused time on the old plan: a credit, as large as a plan's fee or larger.
proration_credits = st.lists(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9000"), places=2), max_size=3
)
percentages = st.decimals(min_value=Decimal("0"), max_value=Decimal("30"), places=3)
coupons = st.one_of(
    st.none(),
    st.tuples(
        st.just("percent"), st.decimals(min_value=Decimal("1"), max_value=Decimal("100"), places=2)
    ),
    st.tuples(
        st.just("amount"), st.decimals(min_value=Decimal("1"), max_value=Decimal("800"), places=2)
    ),
)
rates = st.lists(
    st.tuples(
        percentages,
        st.lists(st.sampled_from(InvoiceLine.CHARGES), min_size=1, unique=True),
        st.booleans(),  # active
    ),
    max_size=4,
)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class TestInvoiceTotals(TestCase):
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        drafts=charges,
        credits=proration_credits,
        coupon=coupons,
        tax_rates=rates,
        balance=st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2),
    )
    def test_money_in_equals_money_out(self, drafts, credits, coupon, tax_rates, balance):
        organization = OrganizationFactory(country="US", region="NY")
        for n, (percentage, kinds, active) in enumerate(tax_rates):
            TaxRate.objects.create(
                name=f"Rate {n}",
                country="US",
                region="NY" if n % 2 else "",
                percentage=percentage,
                applies_to=kinds,
                is_active=active,
            )
        if coupon is not None:
            kind, value = coupon
            invoicing_services.discount_apply(
                organization=organization,
                coupon=Coupon.objects.create(
                    code=f"c{organization.pk}",
                    name="Promo",
                    percent_off=value if kind == "percent" else None,
                    amount_off=Money(value, "USD") if kind == "amount" else None,
                ),
                now=APRIL.start,
            )
        if balance:
            invoicing_services.balance_credit_grant(
                organization=organization,
                kind="goodwill",
                amount=Money(balance, "USD"),
                description="Credit",
                now=APRIL.start,
            )
        lines = [
            pricing.LineDraft(kind, f"Charge {n}", Money(unit, "USD"), quantity=quantity)
            for n, (kind, unit, quantity) in enumerate(drafts)
        ] + [
            pricing.LineDraft("proration", f"Unused time {n}", Money(-credit, "USD"))
            for n, credit in enumerate(credits)
        ]
        if not lines:
            return

        invoice = invoicing_services.invoice_issue(
            organization=organization,
            subscription=None,
            kind="plan_change",
            period=APRIL,
            lines=lines,
            now=APRIL.start,
        )

        saved = list(invoice.lines.all())
        usd = Money(0, "USD")
        # Every line is rounded once; the total is their sum and never negative.
        assert all(line.amount.amount == cents(line.amount.amount) for line in saved)
        assert invoice.total == sum((line.amount for line in saved), usd)
        assert invoice.total.amount >= 0
        assert invoice.status == ("open" if invoice.total.amount > 0 else "paid")
        # Every active rate is one line: its rate of its rounded taxable amount, which is the
        # lines of the kinds it covers (credits reduce it) after their share of the discount.
        net_charges = sum((line.amount for line in saved if line.kind in InvoiceLine.CHARGES), usd)
        discount = sum((line.amount for line in saved if line.kind == "discount"), usd)
        taxes = {line.tax_rate_id: line for line in saved if line.kind == "tax"}
        active = TaxRate.objects.filter(is_active=True)
        assert set(taxes) == {rate.pk for rate in active}
        for rate in active:
            covered = sum((line.amount for line in saved if line.kind in rate.applies_to), usd)
            share = discount.amount * covered.amount / net_charges.amount if discount.amount else 0
            taxable = cents(covered.amount + share)
            assert taxes[rate.pk].amount.amount == cents(taxable * rate.percentage / 100)
        # Money in = money out: what the lines net to before credit is paid by the total and
        # the balance, or, when the credits win, carried to the balance in full.
        owed = invoice.subtotal + invoice.tax_total
        after = invoicing_selectors.organization_balance(organization=organization)
        assert owed == invoice.total + invoice.credit_applied - invoice.credit_carried
        assert after - Money(balance, "USD") == invoice.credit_carried - invoice.credit_applied
        assert not (invoice.credit_applied.amount and invoice.credit_carried.amount)
        carried = BalanceEntry.objects.filter(invoice=invoice, kind="carried")
        assert sum((entry.amount for entry in carried), usd) == invoice.credit_carried
