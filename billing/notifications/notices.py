"""The subscription's notices: what each event of its life tells the organization, sent
through `notification_send` (rendered once committed, recorded once, delivered by the task
queue)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from billing.invoicing import selectors as invoicing_selectors
from billing.models import Notification, Subscription
from billing.notifications.emails import absolute_url, overview_url
from billing.notifications.services import notification_send
from billing.subscriptions import selectors as subscription_selectors

Kind = Notification.Kind


def _moment(at: dt.datetime | None = None) -> str:
    """A moment as a dedup key names it: one event happens once at one moment."""
    return (at or timezone.now()).isoformat(timespec="microseconds")


def send_status_changed(*, subscription: Subscription, previous: str, reason: str) -> None:
    organization = subscription.organization
    status = subscription.status
    notification_send(
        organization=organization,
        kind=Kind.SUBSCRIPTION_STATUS,
        dedup_key=f"subscription:{subscription.pk}:status:{previous}>{status}:{_moment()}",
        template="subscription_status_changed",
        context=lambda: {
            "subscription": subscription,
            "status": status,
            "status_label": Subscription.Status(status).label,
            "previous_label": Subscription.Status(previous).label,
            "reason": reason,
            "retention_days": settings.DATA_RETENTION_DAYS,
            "open_invoice": invoicing_selectors.invoice_oldest_open(organization=organization),
        },
        data={"subscription_id": subscription.pk, "status": status, "previous": previous},
    )


def send_plan_change(*, subscription: Subscription, preview) -> None:
    """The admin changed plans: what changes, when, and what it costs."""
    notification_send(
        organization=subscription.organization,
        kind=Kind.PLAN_CHANGE,
        dedup_key=f"subscription:{subscription.pk}:plan-change:{preview.new_plan.pk}:{_moment()}",
        template="plan_change",
        context=lambda: {
            "subscription": subscription,
            "preview": preview,
            "prorations_invoiced_now": settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY,
            "pending_change": (
                subscription_selectors.pending_change(subscription=subscription, preview=preview)
                if subscription.scheduled_plan_id
                else None
            ),
        },
        data={"subscription_id": subscription.pk, "plan": preview.new_plan.code},
    )


def send_plan_change_applied(*, subscription: Subscription, previous, removals) -> None:
    notification_send(
        organization=subscription.organization,
        kind=Kind.PLAN_CHANGE,
        dedup_key=(
            f"subscription:{subscription.pk}:plan-applied:{subscription.plan_id}:"
            f"{_moment(subscription.current_period_start)}"
        ),
        template="plan_change_applied",
        context=lambda: {"subscription": subscription, "previous": previous, "removals": removals},
        data={"subscription_id": subscription.pk, "plan": subscription.plan.code},
    )


def send_cancellation(*, subscription: Subscription) -> None:
    organization = subscription.organization
    notification_send(
        organization=organization,
        kind=Kind.CANCELLATION,
        dedup_key=f"subscription:{subscription.pk}:cancel:{_moment()}",
        template="cancellation",
        context=lambda: {
            "subscription": subscription,
            "last_day": subscription.billing_period.last_day(subscription.tzinfo),
            "retention_days": settings.DATA_RETENTION_DAYS,
        },
        link=overview_url(organization),
        link_label="Keep your subscription or export your data",
        data={"subscription_id": subscription.pk, "cancel_at_period_end": True},
    )


def send_cancellation_reversed(*, subscription: Subscription) -> None:
    notification_send(
        organization=subscription.organization,
        kind=Kind.CANCELLATION,
        dedup_key=f"subscription:{subscription.pk}:keep:{_moment()}",
        template="cancellation_reversed",
        context=lambda: {
            "subscription": subscription,
            "renews_on": subscription.current_period_end.astimezone(subscription.tzinfo).date(),
        },
        data={"subscription_id": subscription.pk, "cancel_at_period_end": False},
    )


def send_trial_ending(*, subscription: Subscription) -> None:
    organization = subscription.organization
    notification_send(
        organization=organization,
        kind=Kind.TRIAL_ENDING,
        dedup_key=f"subscription:{subscription.pk}:trial-ending:{_moment(subscription.trial_ends_at)}",
        template="trial_ending",
        context=lambda: {
            "subscription": subscription,
            # The trial ends at local midnight: its last day is the one before.
            "last_day": subscription.billing_period.last_day(subscription.tzinfo),
            "starts_on": subscription.trial_ends_at.astimezone(subscription.tzinfo).date(),
        },
        link=absolute_url("billing:plans", organization.slug),
        link_label="Compare plans",
        data={
            "subscription_id": subscription.pk,
            "trial_ends_at": subscription.trial_ends_at.isoformat(),
        },
    )
