"""The kinds of notice and where they go unless the organization chooses otherwise: every
notice is about money or service, so each is shown in the app, e-mailed to the billing
contacts, and posted to the organization's webhooks once it has one."""

from __future__ import annotations

from billing.models import Notification, NotificationPreference

Kind = Notification.Kind
Mode = NotificationPreference.Mode

# The kinds an organization sets preferences for, in the order the settings page lists them.
CHOOSABLE = [kind for kind in Kind if kind != Kind.WEBHOOK_TEST]

# What each kind is about, as the settings page explains it.
DESCRIPTIONS = {
    Kind.USAGE_ALERT: "An allowance, the overage spend or the overage cap reaches a threshold.",
    Kind.PROJECTED_OVERAGE: "This month's pace would use up an allowance before the month ends.",
    Kind.BUDGET_ALERT: "The month's spend reaches a share of your budget, or its forecast passes it.",
    Kind.RENEWAL_REMINDER: "Before each renewal: the date, the amount and how it is paid.",
    Kind.INVOICE_ISSUED: "Each new invoice, with its PDF by e-mail.",
    Kind.INVOICE_REMINDER: "An invoice paid by bank transfer is due soon or overdue.",
    Kind.PAYMENT_SUCCEEDED: "A receipt for each payment.",
    Kind.PAYMENT_FAILED: "A charge failed: why, and when it is tried again.",
    Kind.TRIAL_ENDING: "The free trial is about to end.",
    Kind.PLAN_CHANGE: "The plan changes, now or on a scheduled date.",
    Kind.SUBSCRIPTION_STATUS: "The subscription becomes past due, suspended, active or ends.",
    Kind.CANCELLATION: "The subscription is set to end, or kept after all.",
    Kind.BILLING_REQUEST: "Billing support answers, approves or declines one of your requests.",
}


def default_mode(kind: str, channel: str) -> str:
    """Without a preference of the organization's: at once, on every channel."""
    return Mode.ON
