"""The notification center's pages: the notices, and the settings of where they go.

Adapters only. Administrators change the settings; support staff see them read-only.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.models import Notification, WebhookEndpoint
from billing.notifications import forms, kinds, selectors, services
from billing.web.pages import org_page, posts_by_admins_only, render_org_page

admins_post_only = posts_by_admins_only("billing/admins_change_only.html")


@require_http_methods(["GET"])
@org_page(finances=True)
def notification_list(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in Notification.Kind.values:
        kind = ""
    context = {
        "page": selectors.notifications_page(
            organization=access.organization,
            user=request.user,
            kind=kind,
            page_number=request.GET.get("page"),
        ),
        "kind": kind,
        "kinds": [(choice.value, choice.label) for choice in kinds.CHOOSABLE],
    }
    return render_org_page(request, access, "notifications/list.html", context)


@require_POST
@org_page(finances=True)
@admins_post_only
def mark_read(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = forms.MarkReadForm(request.POST)
    if form.is_valid():
        notification = form.cleaned_data["notification"]
        services.notifications_mark_read(
            organization=access.organization,
            user=request.user,
            notification_ids=[notification] if notification else None,
        )
    return redirect("notifications:list", org_slug=access.organization.slug)


def _preferences_form(organization, data=None) -> forms.PreferencesForm:
    """The form, filled in with the organization's current choices."""
    choices = selectors.recipient_choices(organization=organization)
    initial = {
        forms.preference_field_name(row.kind, channel): mode
        for row in selectors.preference_rows(organization=organization)
        for channel, mode in row.modes.items()
    }
    initial["recipients"] = [choice.user_id for choice in choices if choice.chosen]
    initial["audience"] = organization.notice_audience
    return forms.PreferencesForm(data, initial=initial, recipient_choices=choices)


def _settings_page(request, access, form, webhook_form, status=200) -> HttpResponse:
    organization = access.organization
    context = {
        "form": form,
        "rows": [
            (row, [form[forms.preference_field_name(row.kind, channel)] for channel in row.modes])
            for row in selectors.preference_rows(organization=organization)
        ],
        "channels": forms.Channel.choices,
        "endpoints": selectors.webhook_endpoints(organization=organization),
        "webhook_form": webhook_form,
        "deliveries": selectors.delivery_log(
            organization=organization, page_number=request.GET.get("page")
        ),
        "now": timezone.now(),
    }
    return render_org_page(request, access, "notifications/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def notification_settings(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    if request.method == "GET":
        return _settings_page(
            request, access, _preferences_form(organization), forms.WebhookEndpointForm()
        )
    form = _preferences_form(organization, request.POST)
    if not form.is_valid():
        return _settings_page(request, access, form, forms.WebhookEndpointForm(), status=400)
    services.notification_preferences_set(
        organization=organization,
        modes=form.modes(),
        recipient_ids=form.cleaned_data["recipients"],
        audience=form.cleaned_data["audience"],
        actor=request.user,
    )
    messages.success(request, "Your notification settings are saved.")
    return redirect("notifications:settings", org_slug=organization.slug)


@require_POST
@org_page(finances=True)
@admins_post_only
def webhook_add(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    webhook_form = forms.WebhookEndpointForm(request.POST)
    preferences = _preferences_form(organization)
    if not webhook_form.is_valid():
        return _settings_page(request, access, preferences, webhook_form, status=400)
    try:
        services.webhook_endpoint_create(
            organization=organization,
            url=webhook_form.cleaned_data["url"],
            format=webhook_form.cleaned_data["format"],
            actor=request.user,
        )
    except BillingError as error:
        webhook_form.add_error("url", error.message)
        return _settings_page(request, access, preferences, webhook_form, status=400)
    messages.success(
        request,
        "The webhook is added: every notice you chose for webhooks is posted to it. "
        "Send a test event to check your receiver.",
    )
    return redirect("notifications:settings", org_slug=organization.slug)


def _endpoint_or_404(access: OrgAccess, endpoint_id: int) -> WebhookEndpoint:
    endpoint = access.organization.webhook_endpoints.filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


WEBHOOK_ACTIONS = {
    "test": "A test event is on its way: its delivery shows in the log below.",
    "rotate": "The signing secret is new. Deliveries carry a signature with the old one too "
    "for the grace period, while you switch.",
    "remove": "The webhook is removed: nothing more is posted to it.",
}


@require_POST
@org_page(finances=True)
@admins_post_only
def webhook_action(
    request: HttpRequest, access: OrgAccess, endpoint_id: int, action: str
) -> HttpResponse:
    if action not in WEBHOOK_ACTIONS:
        raise Http404("No such action.")
    endpoint = _endpoint_or_404(access, endpoint_id)
    if action == "test":
        services.webhook_test_send(endpoint=endpoint)
    elif action == "rotate":
        services.webhook_secret_rotate(endpoint=endpoint)
    else:
        services.webhook_endpoint_remove(endpoint=endpoint)
    messages.success(request, WEBHOOK_ACTIONS[action])
    return redirect("notifications:settings", org_slug=access.organization.slug)


@require_POST
@org_page(finances=True)
@admins_post_only
def redeliver(request: HttpRequest, access: OrgAccess, delivery_id: int) -> HttpResponse:
    delivery = selectors.delivery_for(organization=access.organization, delivery_id=delivery_id)
    if delivery is None:
        raise Http404("No such delivery.")
    services.delivery_redeliver(delivery=delivery, actor=request.user)
    messages.success(request, "Sent again: the new delivery shows in the log.")
    return redirect("notifications:settings", org_slug=access.organization.slug)
