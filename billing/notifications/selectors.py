"""Reads of the notification center: a fixed number of queries each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef

from billing.models import (
    Channel,
    Delivery,
    Membership,
    Notification,
    NotificationPreference,
    NotificationRead,
    NotificationRecipient,
    Organization,
    WebhookEndpoint,
)
from billing.notifications import kinds

PAGE_SIZE = 25


def preference_modes(*, organization: Organization, kind: str) -> dict[str, str]:
    """How a notice of `kind` goes out on each channel: the organization's choice, else the
    default."""
    chosen = dict(
        NotificationPreference.objects.filter(organization=organization, kind=kind).values_list(
            "channel", "mode"
        )
    )
    return {channel: chosen.get(channel, kinds.default_mode(kind, channel)) for channel in Channel}


def email_recipients(*, organization: Organization) -> list[str]:
    """The billing contacts, then the chosen members; only the chosen members when the
    organization asked for that."""
    chosen = NotificationRecipient.objects.filter(organization=organization).values_list(
        "user__email", flat=True
    )
    contacts = (
        organization.billing_email_list
        if organization.notice_audience == Organization.NoticeAudience.CONTACTS_AND_MEMBERS
        else []
    )
    addresses = [*contacts, *chosen]
    return list(dict.fromkeys(address for address in addresses if address))


def unread_count(*, organization: Organization, user: AbstractBaseUser) -> int:
    return (
        Notification.objects.filter(organization=organization, in_app=True)
        .exclude(reads__user=user)
        .count()
    )


# Notices that ask for attention until read: limits and spending, and failed payments.
ALERT_KINDS = (
    Notification.Kind.USAGE_ALERT,
    Notification.Kind.PROJECTED_OVERAGE,
    Notification.Kind.BUDGET_ALERT,
    Notification.Kind.PAYMENT_FAILED,
)


def open_alerts(
    *, organization: Organization, user: AbstractBaseUser, since: dt.datetime, count: int = 5
) -> list[Notification]:
    """Alerts since `since` (the usage month's start) this person has not read, newest first."""
    return list(
        Notification.objects.filter(
            organization=organization, in_app=True, kind__in=ALERT_KINDS, created_at__gte=since
        )
        .exclude(reads__user=user)
        .order_by("-created_at", "-pk")[:count]
    )


def notifications_page(
    *, organization: Organization, user: AbstractBaseUser, kind: str, page_number: str | None
) -> Page:
    """The organization's notices, newest first, each with `is_read` for this person."""
    notices = Notification.objects.filter(organization=organization, in_app=True).annotate(
        is_read=Exists(NotificationRead.objects.filter(notification=OuterRef("pk"), user=user))
    )
    if kind:
        notices = notices.filter(kind=kind)
    return Paginator(notices.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(page_number)


@dataclass(frozen=True)
class PreferenceRow:
    kind: str
    label: str
    description: str
    modes: dict[str, str]  # channel → mode


def preference_rows(*, organization: Organization) -> list[PreferenceRow]:
    chosen = {
        (kind, channel): mode
        for kind, channel, mode in NotificationPreference.objects.filter(
            organization=organization
        ).values_list("kind", "channel", "mode")
    }
    return [
        PreferenceRow(
            kind=kind.value,
            label=kind.label,
            description=kinds.DESCRIPTIONS[kind],
            modes={
                channel.value: chosen.get((kind, channel), kinds.default_mode(kind, channel))
                for channel in Channel
            },
        )
        for kind in kinds.CHOOSABLE
    ]


@dataclass(frozen=True)
class RecipientChoice:
    user_id: int
    name: str
    email: str
    chosen: bool


def recipient_choices(*, organization: Organization) -> list[RecipientChoice]:
    """Every member with an e-mail address, and whether they receive the notices."""
    memberships = (
        Membership.objects.filter(organization=organization)
        .exclude(user__email="")
        .select_related("user")
        .annotate(
            chosen=Exists(
                NotificationRecipient.objects.filter(
                    organization=organization, user=OuterRef("user")
                )
            )
        )
        .order_by("user__first_name", "user__username")
    )
    return [
        RecipientChoice(
            membership.user_id,
            membership.user.get_full_name() or membership.user.username,
            membership.user.email,
            membership.chosen,
        )
        for membership in memberships
    ]


def webhook_endpoints(*, organization: Organization) -> list[WebhookEndpoint]:
    return list(organization.webhook_endpoints.filter(is_active=True))


def delivery_log(*, organization: Organization, page_number: str | None) -> Page:
    """Every delivery of the organization's notices, newest first."""
    deliveries = Delivery.objects.filter(notification__organization=organization).select_related(
        "notification", "endpoint"
    )
    return Paginator(deliveries.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(page_number)


def delivery_for(*, organization: Organization, delivery_id: int) -> Delivery | None:
    return (
        Delivery.objects.filter(notification__organization=organization, pk=delivery_id)
        .select_related("notification", "endpoint")
        .first()
    )
