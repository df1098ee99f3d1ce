from billing.models.credits import BalanceEntry, Coupon, Discount, TaxRate
from billing.models.invoices import CreditNote, Invoice, InvoiceLine, PendingLine
from billing.models.notifications import (
    Channel,
    Delivery,
    Notification,
    NotificationPreference,
    NotificationRead,
    NotificationRecipient,
    WebhookEndpoint,
)
from billing.models.subscriptions import (
    TIMEZONE_CHOICES,
    Feature,
    FeatureTrial,
    Membership,
    Organization,
    Plan,
    Subscription,
    split_emails,
    validate_email_list,
)

__all__ = [
    "TIMEZONE_CHOICES",
    "BalanceEntry",
    "Channel",
    "Coupon",
    "CreditNote",
    "Delivery",
    "Discount",
    "Feature",
    "FeatureTrial",
    "Invoice",
    "InvoiceLine",
    "Membership",
    "Notification",
    "NotificationPreference",
    "NotificationRead",
    "NotificationRecipient",
    "Organization",
    "PendingLine",
    "Plan",
    "Subscription",
    "TaxRate",
    "WebhookEndpoint",
    "split_emails",
    "validate_email_list",
]
