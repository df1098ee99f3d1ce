"""Support staff's view of the notification center: every notice and delivery of an
organization (filtered by its slug), read-only, with resending."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from billing.admin.base import BigTableAdmin, OrganizationFilter, ReadOnlyAdmin, ReadOnlyInline
from billing.models import Delivery, Notification
from billing.notifications.services import delivery_redeliver


class ReadOnly(BigTableAdmin, ReadOnlyAdmin):
    """Notices and deliveries are a record that grows with every organization: staff look
    and resend; nobody edits them."""

    def has_resend_permission(self, request):
        return request.user.has_perm("billing.resend_notification")


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ("created_at", "channel", "target", "status", "attempts", "response_code", "error")

    @admin.display(description="to")
    def target(self, delivery: Delivery) -> str:
        return delivery.endpoint.url if delivery.endpoint else ", ".join(delivery.recipients)


class DeliveryOrganizationFilter(OrganizationFilter):
    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(notification__organization__slug=self.value())


def _resend(modeladmin, request, deliveries) -> None:
    count = 0
    for delivery in deliveries:
        delivery_redeliver(delivery=delivery, actor=request.user)
        count += 1
    modeladmin.message_user(
        request, f"{count} deliver{'y' if count == 1 else 'ies'} sent again.", messages.SUCCESS
    )


@admin.register(Notification)
class NotificationAdmin(ReadOnly):
    list_display = ("created_at", "organization", "kind", "title", "in_app", "deliveries_sent")
    list_filter = (OrganizationFilter, "kind")
    list_select_related = ("organization",)
    search_fields = ("title", "dedup_key")
    date_hierarchy = "created_at"
    fields = (
        "organization",
        "kind",
        "dedup_key",
        "created_at",
        "title",
        "summary",
        "link",
        "in_app",
        "data",
    )
    readonly_fields = fields
    inlines = [DeliveryInline]
    actions = ["resend"]

    @admin.display(description="deliveries")
    def deliveries_sent(self, notification: Notification) -> str:
        return format_html(
            '<a href="../delivery/?notification__id__exact={}">log</a>', notification.pk
        )

    @admin.action(
        description="Resend the selected notices on their channels", permissions=["resend"]
    )
    def resend(self, request, queryset):
        latest = {}
        deliveries = Delivery.objects.filter(notification__in=queryset).select_related(
            "notification", "endpoint"
        )
        for delivery in deliveries.order_by("created_at"):
            latest[delivery.notification_id, delivery.channel, delivery.endpoint_id] = delivery
        _resend(self, request, latest.values())


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = (
        "created_at",
        "organization",
        "notice",
        "channel",
        "target",
        "status",
        "attempts",
        "response_code",
    )
    list_filter = (DeliveryOrganizationFilter, "status", "channel")
    list_select_related = ("notification__organization", "endpoint")
    fields = (
        "notification",
        "channel",
        "endpoint",
        "recipients",
        "status",
        "attempts",
        "response_code",
        "error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "sent_at",
    )
    readonly_fields = fields
    actions = ["resend"]

    @admin.display(description="organization")
    def organization(self, delivery: Delivery):
        return delivery.notification.organization

    @admin.display(description="notice")
    def notice(self, delivery: Delivery) -> str:
        return delivery.notification.title

    @admin.display(description="to")
    def target(self, delivery: Delivery) -> str:
        return delivery.endpoint.url if delivery.endpoint else ", ".join(delivery.recipients)

    @admin.action(description="Resend the selected deliveries", permissions=["resend"])
    def resend(self, request, queryset):
        _resend(self, request, queryset.select_related("notification", "endpoint"))
