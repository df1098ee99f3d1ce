"""The notification center: every notice the product sends (the subscription's `notices`,
`invoice_notices`, the payments app's and the usage alerts of the usage app) goes through
`services.notification_send`, to the channels the organization chose: in the app, by
e-mail, to signed webhooks. The subscription's notices are this package's names."""

from billing.notifications.notices import (
    send_cancellation,
    send_cancellation_reversed,
    send_plan_change,
    send_plan_change_applied,
    send_status_changed,
    send_trial_ending,
)

__all__ = [
    "send_cancellation",
    "send_cancellation_reversed",
    "send_plan_change",
    "send_plan_change_applied",
    "send_status_changed",
    "send_trial_ending",
]
