"""The payment banner every billing page shows while the subscription is past due or
suspended."""

from django import template
from django.utils import timezone

from payments import selectors

register = template.Library()


@register.inclusion_tag("payments/_banner.html", takes_context=True)
def payment_banner(context, organization) -> dict:
    """Administrators and staff see the reason and the ways out; members only that service
    is suspended, and whom to ask."""
    access = context.get("access")
    if access is None:  # a page outside an organization's billing pages
        return {}
    return {
        "banner": selectors.payment_banner(
            organization=organization, status=access.subscription_status, now=timezone.now()
        ),
        "organization": organization,
        "access": access,
        "admins": context.get("admins", []),
        "csrf_token": context.get("csrf_token"),
    }
