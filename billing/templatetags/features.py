"""What templates ask about features: which the organization has, and where locked ones are."""

from django import template
from django.utils import timezone

from billing.catalog.selectors import FeatureStatus, feature_statuses
from billing.models import Organization, Plan

register = template.Library()


@register.simple_tag
def features_of(organization: Organization) -> list[FeatureStatus]:
    """`{% features_of organization as features %}`: every feature and how the organization
    has it (two queries, read each time: a plan change shows at once)."""
    return feature_statuses(organization=organization, now=timezone.now())


@register.filter
def plan_and_above(plan: Plan) -> str:
    """`the Professional plan and above`; a custom plan by its own name."""
    if not plan.is_public:
        return plan.name
    return f"the {plan.get_tier_display()} plan and above"
