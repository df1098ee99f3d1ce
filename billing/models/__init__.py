"""Billing's models by domain; every one is importable from here, as migrations and the apps
refer to them."""

from billing.models.accounts import (
    AuditEntry,
    Membership,
    Organization,
    split_emails,
    timezone_choices,
    validate_email_list,
)
from billing.models.catalog import Feature, Plan
from billing.models.credits import BalanceEntry, Coupon, Discount, Referral, TaxRate
from billing.models.invoices import CreditNote, Invoice, InvoiceLine, PendingLine
from billing.models.ledger import AppendOnly
from billing.models.notifications import (
    Channel,
    Delivery,
    Notification,
    NotificationPreference,
    NotificationRead,
    NotificationRecipient,
    WebhookEndpoint,
)
from billing.models.revenue import RevenueSnapshot
from billing.models.subscriptions import FeatureTrial, RenewalRun, Subscription
from billing.models.support import BillingRequest, BillingRequestMessage, DisputedCall

__all__ = [
    "AppendOnly",
    "AuditEntry",
    "BalanceEntry",
    "BillingRequest",
    "BillingRequestMessage",
    "Channel",
    "Coupon",
    "CreditNote",
    "Delivery",
    "Discount",
    "DisputedCall",
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
    "Referral",
    "RenewalRun",
    "RevenueSnapshot",
    "Subscription",
    "TaxRate",
    "WebhookEndpoint",
    "split_emails",
    "timezone_choices",
    "validate_email_list",
]
