import datetime as dt
from decimal import Decimal

import pytest

from billing.catalog import services as catalog_services
from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.lifecycle import selectors as lifecycle_selectors
from billing.lifecycle import services as lifecycle_services
from billing.models import BalanceEntry, Invoice, PendingLine, Plan, Subscription
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import subscription_status_changes
from tests.factories import (
    EmployeeFactory,
    FeatureFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    TaxRateFactory,
)
from tests.helpers import (
    APRIL,
    MAY,
    MID_APRIL,
    invoice_lines,
    professional,
    renew,
    starter,
    subscribe_with_trial,
    usd,
    utc,
)
from usage import services as usage_services
from usage.models import AIEmployee, PhoneNumber

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks, monkeypatch):
    """Run what waits for the commit (the e-mails) at the end of a `with` block; background
    tasks (invoice delivery, collection) are left out."""
    monkeypatch.setattr("payments.tasks.invoice_collect", lambda invoice_id: False)
    return lambda: django_capture_on_commit_callbacks(execute=True)


class TestUpgrade:
    def test_at_the_exact_middle_charges_half_the_new_price_minus_half_the_old(
        self, mailoutbox, committed
    ):
        # Given Starter ($49) on a 30-day period, 1–30 Apr
        subscription = subscribe_with_trial(starter())
        professional_plan = professional()

        # When the admin upgrades to Professional ($199) at the exact middle
        with committed():
            lifecycle_services.subscription_plan_change(
                subscription=subscription, plan=professional_plan, now=MID_APRIL
            )

        # Then the plan changes at once and the billing date stays
        subscription.refresh_from_db()
        assert subscription.plan == professional_plan
        assert (subscription.current_period_start, subscription.current_period_end) == (
            APRIL,
            MAY,
        )
        # and the next invoice carries the fee plus half of $199 minus half of $49
        [invoice] = renew(subscription, MAY)
        assert invoice_lines(invoice) == [
            ("Professional plan (monthly), 1 May – 31 May 2026", usd("199.00")),
            ("Unused time on Starter (monthly), 16 Apr – 30 Apr 2026", usd("-24.50")),
            ("Remaining time on Professional (monthly), 16 Apr – 30 Apr 2026", usd("99.50")),
        ]
        assert invoice.total == usd("274.00")
        assert invoice.period_start == MAY
        assert not PendingLine.objects.filter(invoice__isnull=True).exists()
        [confirmation] = mailoutbox
        assert confirmation.subject.startswith("Your plan is now Professional")
        assert "Net: $75.00" in confirmation.body

    def test_allowances_apply_at_once(self):
        # Given a Starter org with 3 AI employees, its limit
        subscription = subscribe_with_trial(starter())
        for _ in range(3):
            usage_services.employee_create(organization=subscription.organization, name="Agent")

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=professional(), now=MID_APRIL
        )

        # Then a fourth can be created right away
        usage_services.employee_create(organization=subscription.organization, name="Fourth")
        assert AIEmployee.objects.filter(organization=subscription.organization).count() == 4

    def test_the_setting_invoices_the_proration_at_once(self, settings):
        settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY = True
        subscription = subscribe_with_trial(starter())

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=professional(), now=MID_APRIL
        )

        invoice = subscription.invoices.get(kind=Invoice.Kind.PLAN_CHANGE)
        assert invoice.total == usd("75.00")
        assert (invoice.period_start, invoice.period_end) == (MID_APRIL, MAY)
        # and the renewal does not bill it again
        [renewal] = renew(subscription, MAY)
        assert renewal.total == usd("199.00")

    def test_a_higher_tier_priced_lower_credits_the_difference_to_the_balance(
        self, settings, client
    ):
        # Given Professional ($199) with sales tax, and a Business plan on offer for $99
        settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY = True
        organization = OrganizationFactory(country="US")
        TaxRateFactory()  # 8.875% on every charge
        subscription = subscribe_with_trial(professional(), organization=organization)
        cheaper_business = PlanFactory(name="Business", tier=Plan.Tier.BUSINESS, price=usd("99"))

        # When the admin upgrades at the exact middle of April
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=cheaper_business, now=MID_APRIL
        )

        # Then the plan-change invoice credits half of $199 and charges half of $99, with
        # the tax on the credit given back as well: -$50.00 - $4.44 = -$54.44 ...
        invoice = subscription.invoices.get(kind=Invoice.Kind.PLAN_CHANGE)
        assert invoice_lines(invoice, "tax") == [("Sales tax 8.875% of -$50.00", usd("-4.44"))]
        # ... which nobody pays: it is carried to the credit balance, and the total is $0.00
        assert invoice_lines(invoice, "carried") == [
            ("Carried to your credit balance for your next invoices", usd("54.44"))
        ]
        assert (invoice.total, invoice.credit_carried, invoice.status) == (
            usd("0.00"),
            usd("54.44"),
            "paid",
        )
        [entry] = BalanceEntry.objects.filter(organization=organization, kind="carried")
        assert entry.amount == usd("54.44")
        assert entry.invoice == invoice
        assert entry.description == f"Carried from invoice {invoice.number}"
        assert invoicing_selectors.organization_balance(organization=organization) == usd("54.44")
        # and the next invoice spends it
        [renewal] = renew(subscription, MAY)
        assert renewal.credit_applied == usd("54.44")
        assert renewal.total == usd("107.79") - usd("54.44")  # $99 + 8.875% - the credit

    def test_monthly_to_annual_keeps_the_anchor_day_and_starts_a_commitment(self):
        subscription = subscribe_with_trial(starter())
        annual = professional(interval=Plan.Interval.YEAR, price=usd("2029.80"))

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=annual, now=MID_APRIL
        )

        subscription.refresh_from_db()
        # The year starts with the current period, on the anchor day
        assert (subscription.current_period_start, subscription.current_period_end) == (
            APRIL,
            utc(2027, 4, 1),
        )
        assert subscription.commitment_ends_at == utc(2027, 4, 1)
        pending = list(PendingLine.objects.filter(subscription=subscription))
        assert [line.amount for line in pending] == [
            usd("-24.50"),
            # 350 of the year's 365 days remain
            round(usd("2029.80") * Decimal(350) / Decimal(365), 2),
        ]
        # The next invoice is April's usage month, and carries the proration
        [invoice] = renew(subscription, MAY)
        assert invoice.kind == Invoice.Kind.USAGE
        assert invoice.total == pending[0].amount + pending[1].amount

    def test_an_upgrade_replaces_a_scheduled_downgrade(self):
        subscription = subscribe_with_trial(professional())
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter(), now=APRIL
        )
        business = professional(name="Business", tier=Plan.Tier.BUSINESS, price=usd("799.00"))

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=business, now=MID_APRIL
        )

        subscription.refresh_from_db()
        assert (subscription.plan, subscription.scheduled_plan) == (business, None)


class TestDowngrade:
    def test_is_scheduled_for_the_period_end_and_lists_the_features_lost(self):
        analytics = FeatureFactory(code="analytics_dashboards", name="Analytics dashboards")
        calling = FeatureFactory(code="core_calling", name="Core calling")
        current = professional()
        current.features.set([analytics, calling])
        lower = starter()
        lower.features.set([calling])
        subscription = subscribe_with_trial(current)

        preview = lifecycle_selectors.plan_change_preview(
            subscription=subscription, plan=lower, now=MID_APRIL
        )
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=lower, now=MID_APRIL
        )

        assert (preview.kind, preview.applies_now, preview.effective_at) == (
            "downgrade",
            False,
            MAY,
        )
        assert preview.features_lost == [analytics]
        assert preview.proration == []
        subscription.refresh_from_db()
        assert (subscription.plan, subscription.scheduled_plan) == (current, lower)
        # Access stays until the end of the period; then the renewal applies it
        [invoice] = renew(subscription, MAY)
        subscription.refresh_from_db()
        assert subscription.plan == lower
        assert invoice_lines(invoice) == [
            ("Starter plan (monthly), 1 May – 31 May 2026", usd("49.00"))
        ]

    def test_with_too_many_employees_the_admin_chooses_who_goes(self, mailoutbox, committed):
        # Given Professional with 5 active AI employees and 3 numbers; Starter allows 3 and 2
        subscription = subscribe_with_trial(professional())
        organization = subscription.organization
        employees = [
            EmployeeFactory(organization=organization, name=name, created_at=APRIL)
            for name in ["Ava", "Ben", "Cy", "Dee", "Eve"]
        ]
        PhoneNumberRateFactory()
        numbers = [
            usage_services.phone_number_provision(
                organization=organization,
                number=f"+1415555010{n}",
                number_type="local",
                country="US",
                now=APRIL,
            )
            for n in range(3)
        ]
        lower = starter()
        preview = lifecycle_selectors.plan_change_preview(
            subscription=subscription, plan=lower, now=MID_APRIL
        )
        assert (preview.employees_over, preview.numbers_over) == (2, 1)

        # When the admin chooses too few, the change is refused and says what is missing
        with pytest.raises(BillingError) as refused:
            lifecycle_services.subscription_plan_change(
                subscription=subscription,
                plan=lower,
                now=MID_APRIL,
                deactivate_employee_ids=[employees[0].pk],
            )
        assert refused.value.code == "over_new_limits"
        assert refused.value.details == {"employees_over": 2, "numbers_over": 1}

        # When they choose Ava, Ben and the last number
        lifecycle_services.subscription_plan_change(
            subscription=subscription,
            plan=lower,
            now=MID_APRIL,
            deactivate_employee_ids=[employees[0].pk, employees[1].pk],
            release_number_ids=[numbers[2].pk],
        )
        # Then nothing changes before the period ends
        assert AIEmployee.objects.filter(organization=organization, is_active=True).count() == 5

        # And at the end the org is on Starter, within its limits, the chosen ones gone
        with committed():
            renew(subscription, MAY)
        active = AIEmployee.objects.filter(organization=organization, is_active=True)
        assert sorted(active.values_list("name", flat=True)) == ["Cy", "Dee", "Eve"]
        held = PhoneNumber.objects.filter(organization=organization, released_at__isnull=True)
        assert list(held.order_by("pk").values_list("number", flat=True)) == [
            "+14155550100",
            "+14155550101",
        ]
        assert PhoneNumber.objects.get(pk=numbers[2].pk).released_at == MAY
        applied = next(mail for mail in mailoutbox if "Your plan is now Starter" in mail.subject)
        assert "AI employees deactivated to fit the new plan: Ava, Ben." in applied.body

    def test_employees_added_after_scheduling_never_leave_the_org_over_its_quota(
        self, mailoutbox, committed
    ):
        subscription = subscribe_with_trial(professional())
        organization = subscription.organization
        for name in ["Ava", "Ben", "Cy"]:
            EmployeeFactory(organization=organization, name=name, created_at=APRIL)
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter(), now=APRIL
        )
        # a fourth arrives while Professional still applies
        usage_services.employee_create(organization=organization, name="Late", now=MID_APRIL)

        with committed():
            renew(subscription, MAY)

        active = AIEmployee.objects.filter(organization=organization, is_active=True)
        assert sorted(active.values_list("name", flat=True)) == ["Ava", "Ben", "Cy"]
        applied = next(mail for mail in mailoutbox if "Your plan is now Starter" in mail.subject)
        assert "Late" in applied.body
        assert "the most recently added went first" in applied.body

    def test_an_annual_plan_downgrades_when_the_commitment_ends(self):
        annual = professional(interval=Plan.Interval.YEAR, price=usd("2029.80"))
        subscription = subscribe_with_trial(annual)

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter(), now=MID_APRIL
        )

        subscription.refresh_from_db()
        assert subscription.scheduled_change_at == utc(2027, 4, 1)

    def test_the_pending_change_can_be_called_off(self):
        subscription = subscribe_with_trial(professional())
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter(), now=APRIL
        )

        subscription_services.subscription_scheduled_change_cancel(
            subscription=subscription, now=MID_APRIL
        )

        [invoice] = renew(subscription, MAY)
        subscription.refresh_from_db()
        assert subscription.scheduled_plan is None
        assert invoice_lines(invoice) == [
            ("Professional plan (monthly), 1 May – 31 May 2026", usd("199.00"))
        ]

    def test_refusals_have_stable_codes(self):
        subscription = subscribe_with_trial(professional())
        with pytest.raises(BillingError) as same:
            lifecycle_services.subscription_plan_change(
                subscription=subscription, plan=subscription.plan
            )
        other_org_plan = PlanFactory(is_public=False, organization=OrganizationFactory())
        with pytest.raises(BillingError) as foreign:
            lifecycle_services.subscription_plan_change(
                subscription=subscription, plan=other_org_plan
            )
        with pytest.raises(BillingError) as nothing:
            subscription_services.subscription_scheduled_change_cancel(subscription=subscription)
        assert (same.value.code, foreign.value.code, nothing.value.code) == (
            "same_plan",
            "plan_not_offered",
            "no_scheduled_change",
        )


class TestCancellation:
    def test_access_stays_until_the_period_ends_then_the_subscription_ends(
        self, mailoutbox, committed
    ):
        subscription = subscribe_with_trial(professional())

        with committed():
            subscription_services.subscription_cancel(
                subscription=subscription, reason="Moving to another provider", now=MID_APRIL
            )

        subscription.refresh_from_db()
        assert (subscription.status, subscription.cancel_at_period_end) == ("active", True)
        confirmation = mailoutbox[-1]
        assert confirmation.subject.startswith("Your subscription ends on 30 Apr 2026")
        assert "There is no refund for the rest of the period" in confirmation.body
        assert "kept for 60 days" in confirmation.body
        # At the end the subscription is over and nothing more is billed (no usage to bill)
        assert renew(subscription, MAY) == []
        subscription.refresh_from_db()
        assert (subscription.status, subscription.ended_at) == ("canceled", MAY)
        assert subscription.invoices.count() == 1

    def test_a_scheduled_downgrade_waits_while_cancelling_and_returns_when_kept(self):
        # Given Professional with a downgrade to Starter scheduled for 1 May
        subscription = subscribe_with_trial(professional())
        starter_plan = starter()
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter_plan, now=APRIL
        )

        # When the admin cancels, then keeps the subscription
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Too expensive", now=APRIL
        )
        subscription.refresh_from_db()
        on_hold = (subscription.scheduled_plan, subscription.scheduled_change_at)
        subscription_services.subscription_reactivate(subscription=subscription, now=MID_APRIL)

        # Then the change was kept, on hold, through the cancellation, and applies on 1 May
        assert on_hold == (starter_plan, MAY)
        [invoice] = renew(subscription, MAY)
        subscription.refresh_from_db()
        assert subscription.plan == starter_plan
        assert invoice_lines(invoice) == [
            ("Starter plan (monthly), 1 May – 31 May 2026", usd("49.00"))
        ]

    def test_a_scheduled_downgrade_never_applies_to_a_subscription_that_ends(self):
        subscription = subscribe_with_trial(professional())
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter(), now=APRIL
        )
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Too expensive", now=APRIL
        )

        renew(subscription, MAY)

        subscription.refresh_from_db()
        assert subscription.status == "canceled"
        assert subscription.plan.name == "Professional"
        assert (subscription.scheduled_plan, subscription.scheduled_change_at) == (None, None)

    def test_can_be_reversed_before_the_period_ends(self, mailoutbox, committed):
        subscription = subscribe_with_trial(professional())
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Too expensive", now=APRIL
        )

        with committed():
            subscription_services.subscription_reactivate(subscription=subscription, now=MID_APRIL)

        [renewal] = renew(subscription, MAY)
        subscription.refresh_from_db()
        assert (subscription.status, subscription.cancel_at_period_end) == ("active", False)
        assert renewal.total == usd("199.00")
        assert "continues and renews on 1 May 2026" in mailoutbox[-1].body

    def test_after_the_end_it_cannot_be_reversed_but_the_org_can_resubscribe(self):
        subscription = subscribe_with_trial(professional())
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Closing down", now=APRIL
        )
        renew(subscription, MAY)

        with pytest.raises(BillingError) as refused:
            subscription_services.subscription_reactivate(subscription=subscription, now=MAY)

        assert refused.value.code == "not_canceling"
        again = subscribe_with_trial(
            professional(), organization=subscription.organization, start=MAY
        )
        assert again.status == "active"
        assert again.invoices.get().total == usd("199.00")

    def test_needs_a_reason_and_stops_plan_changes(self):
        subscription = subscribe_with_trial(professional())
        with pytest.raises(BillingError) as no_reason:
            subscription_services.subscription_cancel(subscription=subscription, reason="  ")
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Budget", now=APRIL
        )
        with pytest.raises(BillingError) as pending:
            lifecycle_services.subscription_plan_change(
                subscription=subscription, plan=starter(), now=APRIL
            )
        assert (no_reason.value.code, pending.value.code) == (
            "reason_required",
            "cancellation_pending",
        )


class TestTrial:
    def test_no_charge_until_the_trial_ends_then_the_first_invoice(self, mailoutbox, committed):
        # Given a plan with a 14-day trial
        plan = professional(trial_days=14)

        subscription = subscribe_with_trial(plan, start=utc(2026, 4, 1, 9, 30))

        # Then nothing is invoiced, and the trial ends at midnight 14 days on
        assert subscription.status == "trialing"
        assert subscription.trial_ends_at == utc(2026, 4, 15)
        assert not subscription.invoices.exists()
        # A reminder goes out three days before, once
        with committed():
            sent = [
                subscription_services.trial_reminders_send_if_needed(now=utc(2026, 4, day))
                for day in (11, 12, 13)
            ]
        assert sent == [0, 1, 0]
        [reminder] = mailoutbox
        # Its last day is the 14th; the subscription starts, and is charged, on the 15th
        assert reminder.subject.startswith("Your trial ends on 14 Apr 2026")
        assert "Your subscription starts on 15 Apr 2026" in reminder.body
        # At its end the first period starts on the trial's last day and is invoiced
        [invoice] = renew(subscription, utc(2026, 4, 15, 0, 5))
        subscription.refresh_from_db()
        assert subscription.status == "active"
        assert invoice_lines(invoice) == [
            ("Professional plan (monthly), 15 Apr – 14 May 2026", usd("199.00"))
        ]

    def test_a_returning_organization_gets_no_second_trial(self):
        plan = professional(trial_days=14)
        first = subscribe_with_trial(plan)
        subscription_services.subscription_cancel(subscription=first, reason="Not now", now=APRIL)
        renew(first, utc(2026, 4, 15))

        again = subscribe_with_trial(plan, organization=first.organization, start=MAY)

        assert again.status == "active"
        assert again.invoices.get().total == usd("199.00")

    def test_cancelled_during_the_trial_nothing_is_ever_charged(self):
        subscription = subscribe_with_trial(professional(trial_days=14))
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Not for us", now=APRIL
        )

        assert renew(subscription, utc(2026, 4, 15)) == []

        subscription.refresh_from_db()
        assert subscription.status == "canceled"
        assert not Invoice.objects.filter(organization=subscription.organization).exists()

    def test_staff_extend_a_trial_and_the_billing_date_follows(self):
        subscription = subscribe_with_trial(professional(trial_days=14))

        subscription_services.subscription_trial_extend(
            subscription=subscription, ends_on=dt.date(2026, 4, 29), now=utc(2026, 4, 10)
        )

        assert renew(subscription, utc(2026, 4, 20)) == []
        [invoice] = renew(subscription, utc(2026, 4, 29))
        assert invoice.period_start == utc(2026, 4, 29)

    def test_changing_plans_in_a_trial_switches_without_proration(self):
        subscription = subscribe_with_trial(professional(trial_days=14))
        business = professional(name="Business", tier=Plan.Tier.BUSINESS, price=usd("799.00"))

        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=business, now=utc(2026, 4, 5)
        )

        subscription.refresh_from_db()
        assert (subscription.plan, subscription.status) == (business, "trialing")
        assert not PendingLine.objects.exists()
        [invoice] = renew(subscription, utc(2026, 4, 15))
        assert invoice.total == usd("799.00")


class TestFeatureTrial:
    def test_staff_grant_one_and_cannot_grant_it_twice_at_once(self):
        organization = OrganizationFactory()
        feature = FeatureFactory(code="audit_log", name="Audit log")

        trial = catalog_services.feature_trial_grant(
            organization=organization, feature=feature, days=14, now=APRIL
        )

        assert trial.ends_at == utc(2026, 4, 15)
        with pytest.raises(BillingError) as twice:
            catalog_services.feature_trial_grant(
                organization=organization, feature=feature, days=7, now=utc(2026, 4, 10)
            )
        assert twice.value.code == "feature_trial_active"


def test_a_trial_canceled_ends_with_the_reason_recorded():
    subscription = subscribe_with_trial(professional(trial_days=7))
    subscription_services.subscription_cancel(
        subscription=subscription, reason="Not for us", now=APRIL
    )
    renew(subscription, utc(2026, 4, 8))

    changes = subscription_status_changes(subscription=Subscription.objects.get(pk=subscription.pk))

    assert (changes[-1].status, changes[-1].reason) == ("Canceled", "Not for us")
