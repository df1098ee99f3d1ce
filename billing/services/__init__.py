"""Every write of the billing app, as keyword-only functions named `<thing>_<verb>`."""

from billing.services.invoices import (
    LineDraft,
    balance_credit_grant,
    credit_note_issue,
    discount_apply,
    invoice_finalize,
    invoice_issue,
    invoice_mark_paid,
    invoice_void,
    organization_balance,
)
from billing.services.renewals import renew_subscriptions_if_needed, subscription_renew_if_needed
from billing.services.subscriptions import (
    ALLOWED_TRANSITIONS,
    catalog_load,
    membership_set,
    organization_create,
    plan_ensure,
    plan_new_version,
    subscription_create,
    subscription_lock_live,
    subscription_set_status,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "LineDraft",
    "balance_credit_grant",
    "catalog_load",
    "credit_note_issue",
    "discount_apply",
    "invoice_finalize",
    "invoice_issue",
    "invoice_mark_paid",
    "invoice_void",
    "membership_set",
    "organization_balance",
    "organization_create",
    "plan_ensure",
    "plan_new_version",
    "renew_subscriptions_if_needed",
    "subscription_create",
    "subscription_lock_live",
    "subscription_renew_if_needed",
    "subscription_set_status",
]
