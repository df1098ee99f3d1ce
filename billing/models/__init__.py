from billing.models.credits import BalanceEntry, Coupon, Discount, TaxRate
from billing.models.invoices import CreditNote, Invoice, InvoiceLine
from billing.models.subscriptions import (
    TIMEZONE_CHOICES,
    Feature,
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
    "Invoice",
    "InvoiceLine",
    "Membership",
    "Organization",
    "Plan",
    "Subscription",
    "TaxRate",
    "split_emails",
    "validate_email_list",
]
