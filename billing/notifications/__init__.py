"""The notification center: every notice the product sends (`notices`, and the usage
alerts of the usage app) goes through `services.notification_send`, to the channels the
organization chose: in the app, by e-mail, to signed webhooks."""

from billing.notifications.notices import (
    send_cancellation,
    send_cancellation_reversed,
    send_invoice_issued,
    send_plan_change,
    send_plan_change_applied,
    send_status_changed,
    send_trial_ending,
)

__all__ = [
    "send_cancellation",
    "send_cancellation_reversed",
    "send_invoice_issued",
    "send_plan_change",
    "send_plan_change_applied",
    "send_status_changed",
    "send_trial_ending",
]
