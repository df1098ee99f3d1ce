from billing.models.credits import BalanceEntry, Coupon, Discount, TaxRate
from billing.models.invoices import CreditNote, Invoice, InvoiceLine, PendingLine
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
    "Coupon",
    "CreditNote",
    "Discount",
    "Feature",
    "FeatureTrial",
    "Invoice",
    "InvoiceLine",
    "Membership",
    "Organization",
    "PendingLine",
    "Plan",
    "Subscription",
    "TaxRate",
    "split_emails",
    "validate_email_list",
]
