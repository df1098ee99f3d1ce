import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.template.loader import render_to_string
from djmoney.money import Money

from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.models import BalanceEntry, Coupon, Invoice, InvoiceLine, Plan, Subscription, TaxRate
from billing.models.invoices import InvoiceLocked
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    record_call,
)
from tests.helpers import APRIL, MAY, invoice_lines, pdf_text, renew, subscribe, usd, utc
from usage import services as usage_services
from usage.metering import services as metering
from usage.models import CostShare, UsageCounter

pytestmark = pytest.mark.django_db


def new_york_taxes():
    """Sales tax in New York on every charge; a telecom fee on phone numbers, countrywide."""
    TaxRate.objects.create(
        name="NY sales tax",
        country="US",
        region="NY",
        percentage=Decimal("8.875"),
        applies_to=list(InvoiceLine.CHARGES),
    )
    TaxRate.objects.create(
        name="Telecom regulatory fee",
        country="US",
        percentage=Decimal("5"),
        applies_to=["phone_number"],
    )


def use(subscription, seconds, day=None):
    """Record `seconds` of calls for the subscription's organization, in calls of at most 6 h."""
    day = day or utc(2026, 4, 3)
    employee = EmployeeFactory(organization=subscription.organization)
    for n, start in enumerate(range(0, seconds, 6 * 3600)):
        record_call(
            employee=employee,
            seconds=min(6 * 3600, seconds - start),
            connected_at=day + dt.timedelta(minutes=n),
            call_id=f"use-{employee.pk}-{n}",
        )


class TestFirstInvoice:
    def test_subscribing_invoices_the_first_period_in_advance(self):
        subscription = subscribe()

        [invoice] = subscription.invoices.all()

        assert (invoice.kind, invoice.status, invoice.total) == (
            "subscription",
            "open",
            usd("199.00"),
        )
        assert invoice.period == subscription.billing_period
        assert invoice_lines(invoice) == [
            ("Professional plan (monthly), 1 Apr – 30 Apr 2026", usd("199.00"))
        ]
        assert invoice.number == "INV-2026-000001"


class TestRenewal:
    def test_base_fee_in_advance_and_call_overage_in_arrears(self):
        # Given Professional ($199, 180,000 s, $0.004/s) used 182,400 s in April
        subscription = subscribe()
        use(subscription, 182_400, utc(2026, 4, 10))

        # When the period ends
        [invoice] = renew(subscription)

        # Then May's fee and April's 2,400 overage seconds are invoiced
        assert invoice_lines(invoice) == [
            ("Professional plan (monthly), 1 May – 31 May 2026", usd("199.00")),
            (
                "Call overage 1 Apr – 30 Apr 2026: 182,400 s used of 180,000 s included, "
                "2,400 s over at $0.004/s",
                usd("9.60"),
            ),
        ]
        overage = invoice.lines.get(kind="overage_calls")
        assert overage.details == {
            "included_seconds": 180_000,
            "used_seconds": 182_400,
            "overage_seconds": 2_400,
            "rate": "0.004000",
            "capped": False,
        }
        assert (overage.quantity, overage.unit_price) == (2_400, Money(Decimal("0.004"), "USD"))
        assert invoice.total == usd("208.60")
        assert invoice.period == subscription.usage_period_at(MAY)
        subscription.refresh_from_db()
        assert (subscription.current_period_start, subscription.current_period_end) == (
            MAY,
            utc(2026, 6, 1),
        )

    def test_overage_is_capped(self):
        plan = PlanFactory(included_call_seconds=1_000, overage_cap=usd("50.00"))
        subscription = subscribe(plan)
        use(subscription, 100_000)

        [invoice] = renew(subscription)

        overage = invoice.lines.get(kind="overage_calls")
        assert overage.amount == usd("50.00")
        assert "capped at $50.00" in overage.description

    def test_a_block_plan_shows_the_excess_but_does_not_charge_it(self):
        subscription = subscribe(PlanFactory(included_call_seconds=18_000, overage_policy="block"))
        use(subscription, 18_090)

        [invoice] = renew(subscription)

        overage = invoice.lines.get(kind="overage_calls")
        assert overage.amount == usd("0.00")
        assert "90 s over" in overage.description and "not charged" in overage.description

    def test_phone_numbers_are_listed_one_by_one_with_the_first_month_pro_rated(self):
        # One free number; a second held all April; a third provisioned at the middle of April
        subscription = subscribe(PlanFactory(free_phone_numbers=1))
        organization = subscription.organization
        PhoneNumberRateFactory(monthly_price=usd("3.00"), regulatory_fee=usd("0.00"))
        for number, at in (
            ("+12125550100", APRIL),
            ("+12125550101", APRIL),
            ("+12125550102", utc(2026, 4, 16)),
        ):
            usage_services.phone_number_provision(
                organization=organization, number=number, number_type="local", country="US", now=at
            )

        [invoice] = renew(subscription)

        assert invoice_lines(invoice, "phone_number") == [
            (
                "Phone number +12125550100 (local), included in your plan, 1 Apr – 30 Apr 2026",
                usd("0.00"),
            ),
            ("Phone number +12125550101 (local), 1 Apr – 30 Apr 2026", usd("3.00")),
            (
                "Phone number +12125550102 (local), pro-rated from 16 Apr, 1 Apr – 30 Apr 2026",
                usd("1.50"),
            ),
        ]

    def test_storage_overage_is_charged_on_the_peak(self):
        subscription = subscribe(PlanFactory(storage_gb=50))
        metering.usage_report_record(
            organization=subscription.organization,
            kind="storage",
            report_id="s",
            quantity=52 * 1024**3,
            measured_at=utc(2026, 4, 5),
            now=utc(2026, 4, 5),
        )

        [invoice] = renew(subscription)

        # Storage is sold and billed in GiB (2^30 bytes), and the line says so.
        storage = invoice.lines.get(kind="overage_storage")
        assert (storage.quantity, storage.amount) == (Decimal("2"), usd("0.50"))  # 2 GiB × $0.25
        assert storage.description == (
            "Storage overage 1 Apr – 30 Apr 2026: peak 52.00 GiB of 50 GiB included"
        )
        document = render_to_string(
            "billing/_invoice_document.html", invoicing_selectors.invoice_document(invoice=invoice)
        )
        assert re.search(r">2\s+GiB</td>", document)
        assert " GB" not in document

    def test_credits_exceeding_the_charges_make_a_zero_invoice_and_the_rest_carries_forward(self):
        subscription = subscribe()
        invoicing_services.balance_credit_grant(
            organization=subscription.organization,
            kind="goodwill",
            amount=usd("500.00"),
            description="Outage in March",
            now=APRIL,
        )

        [invoice] = renew(subscription)

        assert (invoice.total, invoice.credit_applied, invoice.status) == (
            usd("0.00"),
            usd("199.00"),
            "paid",
        )
        assert invoice_lines(invoice, "credit") == [
            ("Credit from your balance ($301.00 left for later invoices)", usd("-199.00"))
        ]
        assert invoicing_selectors.organization_balance(
            organization=subscription.organization
        ) == usd("301.00")

    def test_taxes_by_jurisdiction_each_on_its_line_kinds(self):
        # Given a New York customer: sales tax on everything, a telecom fee on numbers only
        organization = OrganizationFactory(country="US", region="NY")
        new_york_taxes()
        TaxRate.objects.create(
            name="CA sales tax",
            country="US",
            region="CA",
            percentage=Decimal("7.25"),
            applies_to=list(InvoiceLine.CHARGES),
        )
        subscription = subscribe(PlanFactory(free_phone_numbers=0), organization=organization)
        PhoneNumberRateFactory(monthly_price=usd("3.00"), regulatory_fee=usd("0.00"))
        usage_services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=APRIL,
        )

        [invoice] = renew(subscription)

        # 8.875% of $202.00 = $17.9275 → $17.93; 5% of $3.00 = $0.15; California's rate is
        # not the customer's
        assert invoice_lines(invoice, "tax") == [
            ("NY sales tax 8.875% of $202.00", usd("17.93")),
            ("Telecom regulatory fee 5% of $3.00", usd("0.15")),
        ]
        assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
            usd("202.00"),
            usd("18.08"),
            usd("220.08"),
        )

    def test_every_active_rate_of_the_customer_is_a_line_even_at_zero(self):
        # Given a New York customer with a 0% rate and a fee on numbers, which it has none of
        organization = OrganizationFactory(country="US", region="NY")
        new_york_taxes()
        TaxRate.objects.create(
            name="Digital services tax",
            country="US",
            region="NY",
            percentage=Decimal("0"),
            applies_to=list(InvoiceLine.CHARGES),
        )
        TaxRate.objects.create(
            name="Retired levy",
            country="US",
            percentage=Decimal("3"),
            applies_to=list(InvoiceLine.CHARGES),
            is_active=False,
        )
        subscription = subscribe(organization=organization)

        [invoice] = renew(subscription)

        assert invoice_lines(invoice, "tax") == [
            ("Digital services tax 0% of $199.00", usd("0.00")),
            ("NY sales tax 8.875% of $199.00", usd("17.66")),
            ("Telecom regulatory fee 5% of $0.00", usd("0.00")),
        ]
        assert invoice.tax_total == usd("17.66")
        document = render_to_string(
            "billing/_invoice_document.html", invoicing_selectors.invoice_document(invoice=invoice)
        )
        assert "Telecom regulatory fee 5% of $0.00" in document
        assert "Digital services tax 0% of $199.00" in document

    def test_a_percent_coupon_once_applies_before_tax_to_one_invoice(self):
        organization = OrganizationFactory(country="DE")
        TaxRate.objects.create(
            name="VAT", country="DE", percentage=Decimal("19"), applies_to=list(InvoiceLine.CHARGES)
        )
        subscription = subscribe(organization=organization)
        coupon = Coupon.objects.create(
            code="welcome", name="Welcome", percent_off=Decimal("20"), duration="once"
        )
        invoicing_services.discount_apply(organization=organization, coupon=coupon, now=APRIL)

        [discounted] = renew(subscription)
        [full] = renew(subscription, now=utc(2026, 6, 1))

        assert invoice_lines(discounted, "discount") == [
            ("Discount: Welcome (20% off, once)", usd("-39.80"))
        ]
        assert invoice_lines(discounted, "tax") == [("VAT 19% of $159.20", usd("30.25"))]
        assert discounted.total == usd("189.45")
        assert full.total == usd("236.81")  # $199 + 19%

    def test_a_fixed_coupon_for_three_periods(self):
        subscription = subscribe()
        coupon = Coupon.objects.create(
            code="three",
            name="Three months",
            amount_off=usd("50.00"),
            duration="repeating",
            duration_in_periods=3,
        )
        invoicing_services.discount_apply(
            organization=subscription.organization, coupon=coupon, now=APRIL
        )

        totals = [renew(subscription, now=utc(2026, month, 1))[0].total for month in (5, 6, 7, 8)]

        assert totals == [usd("149.00"), usd("149.00"), usd("149.00"), usd("199.00")]

    def test_invoice_total_is_the_sum_of_its_lines(self):
        subscription = subscribe()
        use(subscription, 200_001)

        [invoice] = renew(subscription)

        assert invoice.total == sum((line.amount for line in invoice.lines.all()), usd("0"))


class TestExactlyOnce:
    def test_running_again_issues_nothing(self):
        subscription = subscribe()

        first = renew(subscription)
        again = renew(subscription)
        renewals.renew_subscriptions_if_needed(now=MAY)

        assert (len(first), again) == (1, [])
        assert subscription.invoices.count() == 2

    def test_nothing_happens_before_the_period_ends(self):
        subscription = subscribe()

        assert renew(subscription, now=MAY - dt.timedelta(seconds=1)) == []

    def test_missed_periods_are_caught_up_one_invoice_each_in_order(self):
        subscription = subscribe()

        issued = renewals.renew_subscriptions_if_needed(now=utc(2026, 7, 15))

        invoices = list(subscription.invoices.order_by("period_start"))
        assert issued == 3
        assert [invoice.period_start for invoice in invoices] == [
            APRIL,
            MAY,
            utc(2026, 6, 1),
            utc(2026, 7, 1),
        ]
        assert [invoice.number for invoice in invoices] == [
            f"INV-2026-00000{n}" for n in range(1, 5)
        ]

    @pytest.mark.parametrize(
        "step",
        [
            "usage.metering.services.usage_period_close",
            "usage.selectors.number_fees_for_period",
            "billing.lifecycle.renewals.invoice_issue",
            "billing.invoicing.pricing.invoice_completion",
            "billing.invoicing.services._balance_entry_write",
            "billing.invoicing.services.get_next_value",
            "billing.invoicing.services.InvoiceLine.objects.bulk_create",
            "usage.costs.services.cost_shares_freeze",
        ],
    )
    def test_a_crash_at_any_step_leaves_nothing_behind_and_a_rerun_bills_once(
        self, step, monkeypatch
    ):
        subscription = subscribe()
        use(subscription, 190_000)
        invoicing_services.balance_credit_grant(
            organization=subscription.organization,
            kind="promotional",
            amount=usd("10.00"),
            description="Promo",
            now=APRIL,
        )

        def crash(*args, **kwargs):
            raise RuntimeError("worker died")

        with monkeypatch.context() as patch:
            patch.setattr(step, crash)
            with pytest.raises(RuntimeError):
                renew(subscription)

        subscription.refresh_from_db()
        assert subscription.current_period_start == APRIL
        assert subscription.invoices.count() == 1
        assert UsageCounter.objects.get().closed_at is None
        assert invoicing_selectors.organization_balance(
            organization=subscription.organization
        ) == usd("10.00")

        [invoice] = renew(subscription)

        assert invoice.total == usd("229.00")  # $199 + 10,000 s × $0.004 - $10 credit
        assert invoice.number == "INV-2026-000002"  # the crashed run used no number
        assert subscription.invoices.count() == 2
        # April's split among AI employees, made once, with the invoice that stayed
        assert sum(share.total.amount for share in invoice.cost_shares.all()) == Decimal("229.00")
        assert CostShare.objects.count() == invoice.cost_shares.count()

    def test_the_database_refuses_a_second_invoice_for_the_same_period(self):
        subscription = subscribe()
        [invoice] = subscription.invoices.all()

        with pytest.raises(IntegrityError):
            Invoice.objects.create(
                organization=invoice.organization,
                subscription=subscription,
                kind="subscription",
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                subtotal=usd(0),
                tax_total=usd(0),
                total=usd(0),
                credit_applied=usd(0),
                created_at=APRIL,
            )


class TestPeriodEndChanges:
    def test_cancellation_at_period_end_issues_a_final_usage_invoice_and_ends(self):
        subscription = subscribe()
        use(subscription, 181_000)
        Subscription.objects.filter(pk=subscription.pk).update(
            cancel_at_period_end=True, cancel_reason="Moving to another provider"
        )

        [invoice] = renew(subscription)

        subscription.refresh_from_db()
        assert (subscription.status, subscription.ended_at) == ("canceled", MAY)
        assert invoice.kind == "final"
        assert [line.kind for line in invoice.lines.all()] == ["overage_calls"]
        assert renew(subscription, now=utc(2026, 6, 1)) == []

    def test_cancellation_without_usage_to_bill_issues_no_invoice(self):
        subscription = subscribe()
        Subscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=True)

        assert renew(subscription) == []
        subscription.refresh_from_db()
        assert subscription.status == "canceled"

    def test_a_scheduled_downgrade_takes_effect_at_renewal(self):
        subscription = subscribe()
        starter = PlanFactory(name="Starter", tier="starter", price=usd("49.00"))
        Subscription.objects.filter(pk=subscription.pk).update(
            scheduled_plan=starter, scheduled_change_at=MAY
        )

        [invoice] = renew(subscription)

        subscription.refresh_from_db()
        assert subscription.plan == starter and subscription.scheduled_plan is None
        assert invoice_lines(invoice, "subscription") == [
            ("Starter plan (monthly), 1 May – 31 May 2026", usd("49.00"))
        ]

    def test_switching_to_annual_keeps_the_anchor_day(self):
        subscription = subscribe(start=utc(2026, 3, 15))
        annual = PlanFactory(interval="year", price=usd("2029.80"))
        Subscription.objects.filter(pk=subscription.pk).update(
            scheduled_plan=annual, scheduled_change_at=utc(2026, 4, 15)
        )

        [invoice] = renew(subscription, now=utc(2026, 4, 15))

        subscription.refresh_from_db()
        assert (subscription.current_period_start, subscription.current_period_end) == (
            utc(2026, 4, 15),
            utc(2027, 4, 15),
        )
        assert invoice.total == usd("2029.80")


class TestAnnualPlans:
    def test_usage_months_close_monthly_and_the_year_renews_after_twelve(self):
        annual = PlanFactory(interval="year", price=usd("2029.80"), free_phone_numbers=0)
        subscription = subscribe(annual)
        PhoneNumberRateFactory(monthly_price=usd("3.00"), regulatory_fee=usd("0.00"))
        usage_services.phone_number_provision(
            organization=subscription.organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=APRIL,
        )
        use(subscription, 181_000)

        [april_usage] = renew(subscription)
        year = renewals.renew_subscriptions_if_needed(now=utc(2027, 4, 1))

        assert april_usage.kind == "usage"
        assert april_usage.period == subscription.usage_period_at(APRIL)
        assert [line.kind for line in april_usage.lines.all()] == ["overage_calls", "phone_number"]
        assert april_usage.total == usd("7.00")  # 1,000 s × $0.004 + $3.00
        # May to February close on their own (the number fee each), March with the renewal
        assert year == 10 + 1
        renewal = subscription.invoices.get(period_start=utc(2027, 4, 1))
        assert (renewal.kind, renewal.lines.first().amount) == ("subscription", usd("2029.80"))


class TestLateReports:
    def test_a_call_reported_after_its_month_was_invoiced_counts_in_the_open_month(self):
        subscription = subscribe()
        employee = EmployeeFactory(organization=subscription.organization)
        renew(subscription)

        record_call(employee=employee, seconds=300, connected_at=utc(2026, 4, 30, 23, 50))

        april, may = UsageCounter.objects.order_by("period_start")
        assert (april.call_seconds, may.call_seconds) == (0, 300)


class TestImmutability:
    def test_a_finalized_invoice_refuses_changes_and_deletion(self):
        invoice = subscribe().invoices.get()

        invoice.total = usd("1.00")
        with pytest.raises(InvoiceLocked):
            invoice.save()
        with pytest.raises(InvoiceLocked):
            invoice.delete()
        line = invoice.lines.get()
        line.amount = usd("1.00")
        with pytest.raises(InvoiceLocked):
            line.save()
        with pytest.raises(InvoiceLocked):
            line.delete()

    def test_settlement_may_still_be_recorded(self):
        invoice = subscribe().invoices.get()
        invoice.status, invoice.paid_at, invoice.payment_reference = "paid", MAY, "ch_123"

        invoice.save(update_fields=["status", "paid_at", "payment_reference"])

        invoice.refresh_from_db()
        assert invoice.status == "paid"


class TestCorrections:
    def test_voiding_returns_the_credit_it_used(self):
        subscription = subscribe()
        invoicing_services.balance_credit_grant(
            organization=subscription.organization,
            kind="referral",
            amount=usd("20.00"),
            description="Referral",
            now=APRIL,
        )
        [invoice] = renew(subscription)

        invoicing_services.invoice_void(invoice=invoice, reason="Billed in error", now=MAY)

        invoice.refresh_from_db()
        assert (invoice.status, invoice.void_reason) == ("void", "Billed in error")
        assert invoicing_selectors.organization_balance(
            organization=subscription.organization
        ) == usd("20.00")

    def test_a_credit_note_credits_the_balance_and_leaves_the_invoice_as_issued(self):
        invoice = subscribe().invoices.get()

        note = invoicing_services.credit_note_issue(
            invoice=invoice, amount=usd("19.90"), reason="Outage on 3 Apr", now=MAY
        )

        assert note.number == "CN-2026-000001"
        assert invoicing_selectors.organization_balance(organization=invoice.organization) == usd(
            "19.90"
        )
        assert Invoice.objects.get(pk=invoice.pk).total == usd("199.00")
        with pytest.raises(BillingError) as refused:
            invoicing_services.credit_note_issue(
                invoice=invoice, amount=usd("180.00"), reason="Too much", now=MAY
            )
        assert refused.value.code == "credit_note_too_large"

    def test_the_ledger_is_append_only(self):
        entry = invoicing_services.balance_credit_grant(
            organization=subscribe().organization,
            kind="goodwill",
            amount=usd("5.00"),
            description="Sorry",
            now=APRIL,
        )

        with pytest.raises(BillingError):
            entry.save()
        with pytest.raises(BillingError):
            entry.delete()
        assert BalanceEntry.objects.count() == 1


def test_plans_keep_one_renewal_per_subscription_with_many_subscriptions():
    subscriptions = [subscribe() for _ in range(5)]

    issued = renewals.renew_subscriptions_if_needed(now=MAY)

    assert issued == 5
    assert all(s.invoices.count() == 2 for s in subscriptions)
    assert Plan.objects.count() == 5


def test_a_voided_invoice_downloads_stamped_void_not_as_stored(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = subscribe().invoices.get()
    before = pdf_text(invoicing_services.invoice_pdf_if_needed(invoice=invoice))

    invoicing_services.invoice_void(invoice=invoice, reason="Duplicate", now=MAY)
    invoice.refresh_from_db()
    after = pdf_text(invoicing_services.invoice_pdf_if_needed(invoice=invoice))

    assert "nothing is owed on this invoice" not in before
    assert "Void since 1 May 2026: nothing is owed on this invoice." in after
    assert "Reason: Duplicate" in after
