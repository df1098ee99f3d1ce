"""Renewal reminders: `RENEWAL_REMINDER_DAYS_MONTHLY` (or `_ANNUAL`) days before a
subscription renews, once per period, its billing contacts are told the date, the expected
amount (the fee, the recurring number fees, the taxes, less the credit balance), how it will
be paid, and how to change plan or cancel before then."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from djmoney.money import Money

from billing.invoicing.selectors import organization_balance
from billing.models import InvoiceLine, Notification, Organization, Plan, Subscription, TaxRate
from billing.money import round_money
from billing.notifications.emails import absolute_url
from billing.notifications.services import notification_send
from payments.selectors import methods_on_file
from usage.selectors import number_fees_for_period


def reminder_days(plan: Plan) -> int:
    if plan.interval == Plan.Interval.YEAR:
        return settings.RENEWAL_REMINDER_DAYS_ANNUAL
    return settings.RENEWAL_REMINDER_DAYS_MONTHLY


def _dedup_key(subscription: Subscription) -> str:
    return f"renewal-reminder:{subscription.pk}:{subscription.current_period_end.isoformat()}"


def renewal_reminders_send_if_needed(*, now: dt.datetime) -> int:
    """The hourly job: remind each subscription renewing within its reminder days, once per
    period (a re-run finds the reminder's notice and sends nothing). Returns how many."""
    longest = max(settings.RENEWAL_REMINDER_DAYS_MONTHLY, settings.RENEWAL_REMINDER_DAYS_ANNUAL)
    due = [
        subscription
        for subscription in Subscription.objects.filter(
            status__in=(Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE),
            cancel_at_period_end=False,
            current_period_end__gt=now,
            current_period_end__lte=now + dt.timedelta(days=longest),
        ).select_related("plan", "scheduled_plan", "organization")
        if subscription.current_period_end - dt.timedelta(days=reminder_days(subscription.plan))
        <= now
    ]
    sent = set(
        Notification.objects.filter(
            dedup_key__in=[_dedup_key(subscription) for subscription in due]
        ).values_list("dedup_key", flat=True)
    )
    reminded = [subscription for subscription in due if _dedup_key(subscription) not in sent]
    for subscription in reminded:
        renewal_reminder_send(subscription=subscription)
    return len(reminded)


@dataclass(frozen=True)
class ExpectedRenewal:
    plan: Plan
    fee: Money
    number_fees: Money
    numbers_charged: int
    taxes: list[tuple[str, Money]]
    credit: Money
    total: Money


def expected_renewal(*, subscription: Subscription) -> ExpectedRenewal:
    """What the renewal invoice is expected to charge, before the usage overage of the
    period ending (which it adds) and any discount."""
    organization: Organization = subscription.organization
    currency = organization.currency
    period_end = subscription.current_period_end
    plan = subscription.plan
    if subscription.scheduled_plan and subscription.scheduled_change_at <= period_end:
        plan = subscription.scheduled_plan
    next_month = subscription.usage_period_at(period_end)
    fees = [
        fee
        for fee in number_fees_for_period(organization=organization, plan=plan, period=next_month)
        if not fee.is_free and fee.phone_number.released_at is None
    ]
    number_fees = sum((fee.amount for fee in fees), Money(0, currency))
    by_kind = {
        InvoiceLine.Kind.SUBSCRIPTION: plan.price,
        InvoiceLine.Kind.PHONE_NUMBER: number_fees,
    }
    rates = TaxRate.objects.filter(
        Q(region="") | Q(region__iexact=organization.region),
        country=organization.country,
        is_active=True,
    ).order_by("name", "pk")
    taxes = []
    for rate in rates:
        taxable = sum(
            (amount for kind, amount in by_kind.items() if kind in rate.applies_to),
            Money(0, currency),
        )
        if taxable.amount:
            taxes.append((rate.name, round_money(taxable * rate.percentage / 100)))
    subtotal = plan.price + number_fees + sum((tax for _, tax in taxes), Money(0, currency))
    balance = organization_balance(organization=organization)
    credit = min(balance, subtotal) if balance.amount > 0 else Money(0, currency)
    return ExpectedRenewal(
        plan=plan,
        fee=plan.price,
        number_fees=number_fees,
        numbers_charged=len(fees),
        taxes=taxes,
        credit=credit,
        total=subtotal - credit,
    )


def renewal_reminder_send(*, subscription: Subscription) -> None:
    organization = subscription.organization
    renews_at = subscription.current_period_end

    def context() -> dict:
        methods = methods_on_file(organization=organization, today=renews_at.date())
        return {
            "subscription": subscription,
            "renews_on": renews_at.astimezone(subscription.tzinfo).date(),
            "expected": expected_renewal(subscription=subscription),
            "by_invoice": organization.payment_terms == Organization.PaymentTerms.INVOICE,
            "payment_method": methods.default.method if methods.default else None,
            "plans_link": absolute_url("billing:plans", organization.slug),
            "cancel_link": absolute_url("billing:cancel", organization.slug),
            "methods_link": absolute_url("payments:methods", organization.slug),
        }

    notification_send(
        organization=organization,
        kind=Notification.Kind.RENEWAL_REMINDER,
        dedup_key=_dedup_key(subscription),
        template="renewal_reminder",
        context=context,
        data={"subscription_id": subscription.pk, "renews_at": renews_at.isoformat()},
    )
