"""The billing support queue: requests with their organization, plan, kind, amount in
question, age, business time left to the response target and assignee; the conversation;
replies, internal notes and the decisions, each on its own confirmation page."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from djmoney.money import Money

from billing.admin.base import (
    AuditedAdmin,
    OrganizationFilter,
    ReadOnlyInline,
    action_confirmed,
    invoice_link,
)
from billing.errors import BillingError, ErrorCode
from billing.lifecycle.disputes import billing_request_resolve
from billing.models import BillingRequest, BillingRequestMessage, DisputedCall, Subscription
from billing.support import services as support_services
from billing.support import targets
from billing.support.forms import ApprovalForm, DeclineForm, StaffReplyForm
from billing.web.attachments import attachment_of, attachment_response

BREACHING_SOON = dt.timedelta(hours=4)


class TargetFilter(admin.SimpleListFilter):
    """The open requests by their response target: breached, or breaching within four hours."""

    title = "response target"
    parameter_name = "target"

    def lookups(self, request, model_admin):
        return (("soon", "Breaching soon (4 hours)"), ("breached", "Breached"))

    def queryset(self, request, queryset):
        now = timezone.now()
        waiting = queryset.filter(status=BillingRequest.Status.OPEN)
        if self.value() == "soon":
            return waiting.filter(respond_by__gt=now, respond_by__lte=now + BREACHING_SOON)
        if self.value() == "breached":
            return waiting.filter(respond_by__lte=now)
        return queryset


class MessageInline(ReadOnlyInline):
    model = BillingRequestMessage
    fields = ("created_at", "kind", "author", "body", "attachment_shown")
    readonly_fields = fields
    extra = 0

    @admin.display(description="Attachment")
    def attachment_shown(self, message):
        if not message.attachment:
            return "—"
        url = reverse("admin:billing_billingrequest_attachment", args=[message.pk])
        return format_html('<a href="{}">{}</a>', url, message.attachment_name)


class DisputedCallInline(ReadOnlyInline):
    model = DisputedCall
    fields = ("platform_call_id", "employee_name", "direction", "connected_at", "billable_seconds")
    readonly_fields = fields
    extra = 0


@admin.register(BillingRequest)
class BillingRequestAdmin(AuditedAdmin):
    list_display = (
        "subject",
        "organization",
        "plan",
        "kind",
        "status",
        "amount_in_question",
        "age",
        "time_left",
        "assignee",
    )
    list_filter = (TargetFilter, "status", "kind", OrganizationFilter, "assignee")
    list_select_related = ("organization", "assignee")
    search_fields = ("subject", "invoice__number", "organization__name")
    ordering = ("respond_by",)
    fields = (
        "organization",
        "kind",
        "status",
        "subject",
        "reason",
        "invoice_shown",
        "line",
        "amount_in_question",
        "seconds_in_question",
        "opened_by",
        "created_at",
        "respond_by",
        "first_response_at",
        "escalated_at",
        "assignee",
        "decided_at",
        "decided_by",
        "decision_reason",
        "approved_amount",
        "credit_note",
        "refunded",
        "auto_approved",
    )
    readonly_fields = tuple(field for field in fields if field != "assignee")
    inlines = (DisputedCallInline, MessageInline)

    def get_queryset(self, request):
        plan = Subscription.objects.filter(
            organization=OuterRef("organization"), status__in=Subscription.LIVE_STATUSES
        ).values("plan__name")[:1]
        return super().get_queryset(request).annotate(plan_name=Subquery(plan))

    def has_add_permission(self, request):
        return False  # customers open requests; staff answer them

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        support_services.billing_request_assign(request=obj, assignee=obj.assignee)

    @admin.display(description="Plan")
    def plan(self, billing_request):
        return billing_request.plan_name or "—"

    @admin.display(description="Invoice")
    def invoice_shown(self, billing_request):
        return invoice_link(billing_request.invoice) if billing_request.invoice else "—"

    @admin.display(description="Age", ordering="created_at")
    def age(self, billing_request):
        return timesince(billing_request.created_at)

    @admin.display(description="Time left to target", ordering="respond_by")
    def time_left(self, billing_request):
        if not billing_request.is_open:
            return "—"
        if billing_request.status == BillingRequest.Status.ANSWERED:
            return "Answered"
        left = targets.business_time_left(
            deadline=billing_request.respond_by,
            now=timezone.now(),
            timezone=billing_request.organization.timezone,
        )
        if left <= dt.timedelta():
            escalated = " (escalated)" if billing_request.escalated_at else ""
            return format_html('<strong class="errornote">Breached{}</strong>', escalated)
        hours, rest = divmod(int(left.total_seconds()), 3600)
        return f"{hours} h {rest // 60} min"

    # --- actions ------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:request_id>/reply/",
                self.admin_site.admin_view(self.reply_view),
                name="billing_billingrequest_reply",
            ),
            path(
                "<int:request_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="billing_billingrequest_approve",
            ),
            path(
                "<int:request_id>/decline/",
                self.admin_site.admin_view(self.decline_view),
                name="billing_billingrequest_decline",
            ),
            path(
                "attachment/<int:message_id>/",
                self.admin_site.admin_view(self.attachment_view),
                name="billing_billingrequest_attachment",
            ),
            *super().get_urls(),
        ]

    def _request_to_answer(self, request, request_id) -> BillingRequest:
        # Refused before the lookup: whoever may not answer learns nothing of what exists.
        if not self.has_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(
            BillingRequest.objects.select_related("organization", "invoice"), pk=request_id
        )

    def reply_view(self, request, request_id):
        billing_request = self._request_to_answer(request, request_id)
        form = StaffReplyForm(request.POST or None, request.FILES or None)
        return action_confirmed(
            self,
            request,
            original=billing_request,
            template="admin/billing/billingrequest/reply.html",
            title=f"Reply to {billing_request}",
            form=form,
            perform=lambda: support_services.billing_request_reply(
                request=billing_request,
                author=request.user,
                body=form.cleaned_data["body"],
                kind="internal" if form.cleaned_data["internal"] else "staff",
                attachment=attachment_of(form),
            ),
            done=lambda message: (
                "Internal note added."
                if message.kind == "internal"
                else f"Reply sent to {billing_request.organization}."
            ),
        )

    def approve_view(self, request, request_id):
        # Approving issues a credit note (or a refund): Finance's.
        if not request.user.has_perm("billing.add_creditnote"):
            raise PermissionDenied
        billing_request = self._request_to_answer(request, request_id)
        in_question = billing_request.amount_in_question
        form = ApprovalForm(
            request.POST or None, initial={"amount": in_question.amount if in_question else None}
        )
        return action_confirmed(
            self,
            request,
            original=billing_request,
            template="admin/billing/billingrequest/approve.html",
            title=f"Approve {billing_request}",
            form=form,
            perform=lambda: self._approve(request, billing_request, form.cleaned_data),
            done=lambda approved: (
                f"Approved: credit note {approved.credit_note} for {approved.approved_amount} "
                + ("refunded to the customer's card." if approved.refunded else "on the balance.")
            ),
            can_submit=billing_request.is_open and in_question is not None,
        )

    @staticmethod
    def _approve(request, billing_request: BillingRequest, data: dict) -> BillingRequest:
        if data["refund"] and not request.user.has_perm("payments.add_refund"):
            raise BillingError(ErrorCode.REFUND_NOT_PERMITTED)
        return billing_request_resolve(
            request=billing_request,
            amount=Money(data["amount"], billing_request.amount_in_question.currency),
            reason=data["reason"],
            refund=data["refund"],
            actor=request.user,
        )

    def decline_view(self, request, request_id):
        billing_request = self._request_to_answer(request, request_id)
        form = DeclineForm(request.POST or None)
        return action_confirmed(
            self,
            request,
            original=billing_request,
            template="admin/billing/billingrequest/decline.html",
            title=f"Decline {billing_request}",
            form=form,
            perform=lambda: support_services.billing_request_decline(
                request=billing_request, reason=form.cleaned_data["reason"], actor=request.user
            ),
            done=lambda declined: f"Declined; {billing_request.organization} is told why.",
            can_submit=billing_request.is_open,
        )

    def attachment_view(self, request, message_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        message = get_object_or_404(BillingRequestMessage, pk=message_id)
        if not message.attachment:
            raise Http404("No attachment.")
        return attachment_response(message)
