"""The alerts page: each resource's use against its thresholds this period, the
organization's own thresholds, and snoozing. Adapters only; administrators change things,
support staff look."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from usage import selectors as usage_selectors
from usage.alerts import forms, selectors, services

admins_post_only = posts_by_admins_only("usage/admins_change_only.html")


def _alerts_page(request, access, form, status=200) -> HttpResponse:
    now = timezone.now()
    subscription = selectors.organization_subscription(organization=access.organization)
    states = []
    if subscription is not None:
        summary = usage_selectors.usage_summary(subscription=subscription, now=now)
        states = selectors.alert_states(
            subscription=subscription, used=selectors.metric_values(summary), now=now
        )
    context = {"subscription": subscription, "states": states, "form": form}
    return render_org_page(request, access, "usage/alerts.html", context, status=status)


@require_GET
@org_page(finances=True)
def alerts(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _alerts_page(request, access, forms.ThresholdAddForm())


def _back(access: OrgAccess) -> HttpResponse:
    return redirect("usage:alerts", org_slug=access.organization.slug)


@require_POST
@org_page(finances=True)
@admins_post_only
def threshold_add(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = forms.ThresholdAddForm(request.POST)
    if not form.is_valid():
        return _alerts_page(request, access, form, status=400)
    try:
        services.alert_threshold_add(
            organization=access.organization,
            metric=form.cleaned_data["metric"],
            unit=form.cleaned_data["unit"],
            value=form.cleaned_data["value"],
            actor=request.user,
        )
    except BillingError as error:
        form.add_error("value", error.message)
        return _alerts_page(request, access, form, status=400)
    messages.success(
        request, "The threshold is added: you are alerted once a period it is crossed."
    )
    return _back(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def threshold_change(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = forms.ThresholdForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That threshold does not exist.")
        return _back(access)
    data = form.cleaned_data
    key = {"metric": data["metric"], "unit": data["unit"], "value": data["value"]}
    if data["action"] == "remove":
        services.alert_threshold_remove(organization=access.organization, **key)
        messages.success(request, "The threshold is removed.")
    else:
        services.alert_threshold_switch(
            organization=access.organization,
            enabled=data["action"] == "on",
            actor=request.user,
            **key,
        )
        messages.success(
            request, f"The threshold is switched {'on' if data['action'] == 'on' else 'off'}."
        )
    return _back(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def snooze(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = forms.SnoozeForm(request.POST)
    subscription = selectors.organization_subscription(organization=access.organization)
    if form.is_valid() and subscription is not None:
        metric = form.cleaned_data["metric"]
        snoozed = services.alert_snooze(
            subscription=subscription, metric=metric, actor=request.user
        )
        label = selectors.metric_label(metric).lower()
        messages.success(
            request,
            f"No more {label} alerts until this usage period ends."
            if snoozed
            else f"The {label} alerts are already snoozed until this usage period ends.",
        )
    next_page = request.POST.get("next", "")
    if next_page == "notifications":
        return redirect("notifications:list", org_slug=access.organization.slug)
    return _back(access)
