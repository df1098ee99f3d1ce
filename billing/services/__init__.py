"""Every write of the billing app, as keyword-only functions named `<thing>_<verb>`."""

from billing.services.plan_changes import subscription_plan_change
from billing.services.renewals import renew_subscriptions_if_needed, subscription_renew_if_needed
from billing.services.retention import usage_data_purge_if_needed

__all__ = [
    "renew_subscriptions_if_needed",
    "subscription_plan_change",
    "subscription_renew_if_needed",
    "usage_data_purge_if_needed",
]
