"""The bell with the unread count, on every billing page of those who see the finances."""

from django import template

from billing.notifications import selectors

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context) -> dict:
    access = context.get("access")
    request = context.get("request")
    if access is None or request is None or not access.sees_finances:
        return {}
    return {
        "organization": access.organization,
        "unread": selectors.unread_count(organization=access.organization, user=request.user),
    }
