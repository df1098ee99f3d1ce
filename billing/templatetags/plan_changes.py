"""What the plan-change buttons say."""

from django import template

from billing.subscriptions import selectors as subscription_selectors

register = template.Library()


@register.simple_tag
def plan_action(plan, current_plan, subscription_status) -> str:
    """`subscribe`, `switch`, `upgrade`, `downgrade`, or `current` for the plan already held."""
    return subscription_selectors.plan_change_action(
        current=current_plan, plan=plan, trialing=subscription_status == "trialing"
    )
