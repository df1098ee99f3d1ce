"""The staff roles: permission groups that say what each kind of staff may read and do.

Support read every organization's billing and take the safe actions; Finance are Support plus
everything that moves money; Catalog keep the plans, features and the number price list.
What no role holds (users and groups, the task queue's internals, sign-in records,
authenticators, service tokens) is for superusers only. A staff account in no group sees
nothing of billing.

The groups are created by a migration from these lists; a test checks they agree.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPPORT = "Support"
    FINANCE = "Finance"
    CATALOG = "Catalog"


def _views(*labels: str) -> tuple[str, ...]:
    """`app.view_model` for each `app.model`."""
    return tuple(f"{label.split('.')[0]}.view_{label.split('.')[1]}" for label in labels)


# Reading an organization's billing: its admin pages, records and billing pages (export too).
BILLING_READS = (
    "billing.view_billing",
    "billing.view_auditentry",
    *_views(
        "billing.organization",
        "billing.membership",
        "billing.subscription",
        "billing.featuretrial",
        "billing.feature",
        "billing.plan",
        "billing.invoice",
        "billing.invoiceline",
        "billing.pendingline",
        "billing.creditnote",
        "billing.coupon",
        "billing.discount",
        "billing.taxrate",
        "billing.balanceentry",
        "billing.notification",
        "billing.delivery",
        "usage.aiemployee",
        "usage.phonenumber",
        "usage.phonenumberrate",
        "usage.call",
        "usage.usagecounter",
        "usage.usagereport",
        "payments.paymentattempt",
        "payments.paymentmethod",
        "payments.collection",
        "payments.refund",
        "billing.billingrequest",
        "billing.billingrequestmessage",
        "billing.disputedcall",
        "billing.referral",
        "usage.spendcap",
        "usage.spendcapchange",
        "usage.budgetchange",
        "billing.renewalrun",
        "billing.revenuesnapshot",
    ),
)

SUPPORT_ACTIONS = (
    "payments.add_paymentattempt",  # the admin's collection pages write payment attempts
    "billing.retry_payment",
    "billing.extend_trial",
    "billing.add_featuretrial",
    "billing.resend_notification",
    "billing.call_off_scheduled_change",
    # Answering billing requests: replies, internal notes, assigning, declining. Approving
    # issues a credit note (or a refund): Finance.
    "billing.change_billingrequest",
    # Operating the account: deactivate or reactivate AI employees, release numbers.
    "usage.change_aiemployee",
    "usage.change_phonenumber",
)

FINANCE_ACTIONS = (
    "billing.add_creditnote",
    "billing.add_balanceentry",
    "billing.void_invoice",
    "billing.add_coupon",
    "billing.change_coupon",
    "billing.add_discount",
    "billing.record_bank_transfer",
    "billing.add_taxrate",
    "billing.change_taxrate",
    "payments.add_refund",
    # What the customer is charged: plan changes, cancellation, renewal, billing details.
    "billing.manage_subscription",
    "billing.add_organization",
    "billing.change_organization",
    "billing.add_membership",
    "billing.change_membership",
    "billing.delete_membership",
)

CATALOG_ACTIONS = (
    *_views("billing.feature", "billing.plan", "usage.phonenumberrate"),
    # The owner of a private plan is chosen by name.
    "billing.view_organization",
    "billing.add_feature",
    "billing.change_feature",
    "billing.add_plan",
    "billing.change_plan",
    "usage.add_phonenumberrate",
    "usage.change_phonenumberrate",
)

ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.SUPPORT: (*BILLING_READS, *SUPPORT_ACTIONS),
    Role.FINANCE: (*BILLING_READS, *SUPPORT_ACTIONS, *FINANCE_ACTIONS),
    Role.CATALOG: CATALOG_ACTIONS,
}


def roles_granting(permission: str) -> list[Role]:
    """The roles whose members hold `permission` ("app.codename"), in the order above."""
    return [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
