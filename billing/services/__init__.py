"""Every write of the billing app, as keyword-only functions named `<thing>_<verb>`."""

from billing.services.plan_changes import (
    plan_change_preview,
    subscription_cancel,
    subscription_plan_change,
    subscription_reactivate,
    subscription_scheduled_change_cancel,
    subscription_trial_extend,
    trial_reminders_send_if_needed,
)
from billing.services.renewals import renew_subscriptions_if_needed, subscription_renew_if_needed
from billing.services.retention import usage_data_purge_if_needed
from billing.services.subscriptions import (
    ALLOWED_TRANSITIONS,
    subscription_create,
    subscription_lock_live,
    subscription_set_status,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "plan_change_preview",
    "renew_subscriptions_if_needed",
    "subscription_cancel",
    "subscription_create",
    "subscription_lock_live",
    "subscription_plan_change",
    "subscription_reactivate",
    "subscription_renew_if_needed",
    "subscription_scheduled_change_cancel",
    "subscription_set_status",
    "subscription_trial_extend",
    "trial_reminders_send_if_needed",
    "usage_data_purge_if_needed",
]
