"""Who may open what in the admin: every registered model's list, add, change, delete and
history pages, every page of its own (the staff actions' confirmation pages), and every
action of its lists, for each kind of staff account. The cases come from the admin's
registry: a model, page or action without a rule here fails, so none can escape the roles."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from tests.factories import (
    StaffFactory,
    SubscriptionFactory,
    declined_invoice,
    renewed_invoice,
    sign_in,
)

pytestmark = pytest.mark.django_db

ACCOUNTS = ("no role", "Support", "Finance", "Catalog", "superuser")
S, F, C, U = "Support", "Finance", "Catalog", "superuser"
READERS = {S, F, U}  # who reads an organization's billing
EVERYONE = {S, F, C, U}
SUPERUSER = {U}
NOBODY: set[str] = set()


def rule(view, add=NOBODY, delete=NOBODY, **pages_and_actions):
    # Whoever may delete one may delete several from the list.
    bulk = {"delete_selected": delete} if delete else {}
    return {"view": view, "add": add, "delete": delete, **bulk, **pages_and_actions}


# Per model: who may view (list, change page, history), add and delete; then its own pages
# (by URL name) and its lists' actions (by name).
RULES = {
    "billing.organization": rule(
        EVERYONE,
        add={F, U},
        delete=SUPERUSER,
        billing_organization_feature_trial=READERS,
        billing_organization_360=READERS,
    ),
    "billing.featuretrial": rule(READERS),
    "billing.auditentry": rule(READERS),
    "billing.referral": rule(READERS),
    "usage.spendcap": rule(READERS),
    "usage.spendcapchange": rule(READERS),
    "usage.budgetchange": rule(READERS),
    # The renewal job's runs: how many were due, issued, failed, and how long it took.
    "billing.renewalrun": rule(READERS),
    # The daily revenue figures, read-only.
    "billing.revenuesnapshot": rule(READERS),
    "billing.feature": rule(EVERYONE, add={C, U}, delete=SUPERUSER),
    "billing.plan": rule(
        EVERYONE,
        add={C, U},
        delete=SUPERUSER,
        billing_plan_new_version={C, U},
        # One past version of the plan (django-simple-history).
        billing_plan_simple_history=EVERYONE,
    ),
    "billing.invoice": rule(
        READERS,
        billing_invoice_void={F, U},
        billing_invoice_credit_note={F, U},
        billing_revenue_metrics=READERS,
        billing_revenue_organizations=READERS,
    ),
    "billing.creditnote": rule(READERS),
    "billing.billingrequest": rule(
        READERS,
        billing_billingrequest_reply=READERS,
        billing_billingrequest_decline=READERS,
        billing_billingrequest_approve={F, U},
        billing_billingrequest_attachment=READERS,
    ),
    "billing.coupon": rule(READERS, add={F, U}, delete=SUPERUSER),
    "billing.discount": rule(READERS, add={F, U}),
    "billing.taxrate": rule(READERS, add={F, U}, delete=SUPERUSER),
    "billing.balanceentry": rule(READERS, add={F, U}),
    "billing.notification": rule(READERS, resend=READERS),
    "billing.delivery": rule(READERS, resend=READERS),
    "billing.subscription": rule(
        READERS,
        renew_now={F, U},
        billing_subscription_change_plan={F, U},
        billing_subscription_cancel={F, U},
        billing_subscription_reactivate={F, U},
        billing_subscription_call_off_change=READERS,
        billing_subscription_extend_trial=READERS,
        billing_subscription_simple_history=READERS,
    ),
    "usage.aiemployee": rule(READERS, add=SUPERUSER, deactivate=READERS, reactivate=READERS),
    "usage.phonenumber": rule(READERS, add=SUPERUSER, release=READERS),
    "usage.phonenumberrate": rule(EVERYONE, add={C, U}, delete=SUPERUSER),
    "usage.call": rule(READERS),
    "usage.usagecounter": rule(READERS),
    "usage.usagereport": rule(READERS),
    # The calling platform's credentials.
    "usage.servicetoken": rule(SUPERUSER, add=SUPERUSER, revoke=SUPERUSER),
    "payments.paymentattempt": rule(READERS, payments_paymentattempt_refund={F, U}),
    "payments.paymentmethod": rule(READERS),
    # The daily reconciliation with Stripe: superusers, who act on it at Stripe.
    "payments.stripemismatch": rule(SUPERUSER),
    "payments.stripereconciliation": rule(SUPERUSER),
    "payments.collection": rule(
        READERS,
        payments_invoice_retry=READERS,
        payments_invoice_bank_transfer={F, U},
        payments_dunning_board=READERS,
    ),
    # The invoice numbers' counters: read-only even for superusers.
    "sequences.sequence": rule(SUPERUSER),
    # People, sign-in records, authenticators and the task queue: superusers only.
    "auth.user": rule(
        SUPERUSER,
        add=SUPERUSER,
        delete=SUPERUSER,
        auth_user_password_change=SUPERUSER,
    ),
    "auth.group": rule(SUPERUSER, add=SUPERUSER, delete=SUPERUSER),
    "axes.accessattempt": rule(SUPERUSER, delete=SUPERUSER, cleanup_expired_attempts=SUPERUSER),
    "axes.accesslog": rule(SUPERUSER, delete=SUPERUSER),
    "axes.accessfailurelog": rule(SUPERUSER, delete=SUPERUSER),
    "otp_totp.totpdevice": rule(
        SUPERUSER,
        add=SUPERUSER,
        delete=SUPERUSER,
        otp_totp_totpdevice_config=SUPERUSER,
        otp_totp_totpdevice_qrcode=SUPERUSER,
    ),
    "otp_static.staticdevice": rule(SUPERUSER, add=SUPERUSER, delete=SUPERUSER),
    "django_q.schedule": rule(SUPERUSER, add=SUPERUSER, delete=SUPERUSER),
    "django_q.success": rule(SUPERUSER, delete=SUPERUSER, resubmit_task=SUPERUSER),
    "django_q.failure": rule(SUPERUSER, delete=SUPERUSER, resubmit_task=SUPERUSER),
    "django_q.ormq": rule(SUPERUSER, delete=SUPERUSER),
}

STANDARD_PAGES = {"changelist", "add", "change", "delete", "history"}
REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)
# dj-stripe's mirror of Stripe's objects, with dj-stripe's own admin: superusers only. No
# role reaches any of its pages or actions; what superusers may do there is dj-stripe's.
PROCESSOR_MIRROR = "djstripe"
for _model, _model_admin in REGISTRY:
    if _model._meta.app_label == PROCESSOR_MIRROR:
        RULES[_model._meta.label_lower] = rule(SUPERUSER, add=SUPERUSER, delete=SUPERUSER)


def own_pages(model_admin) -> list[str]:
    """The URL names of a model admin's own pages (its staff actions' confirmation pages)."""
    opts = model_admin.model._meta
    standard = {f"{opts.app_label}_{opts.model_name}_{page}" for page in STANDARD_PAGES}
    return [
        pattern.name
        for pattern in model_admin.get_urls()
        if pattern.name and pattern.name not in standard
    ]


@pytest.fixture(scope="module")
def accounts(module_transaction):
    """One staff account of each kind, each signed in on a client of its own; made once for
    the module."""
    from django.test import Client

    signed_in = {}
    with module_transaction():
        for account in ACCOUNTS:
            if account == "superuser":
                user = StaffFactory(username="root", is_superuser=True, roles=[])
            else:
                roles = [] if account == "no role" else [account]
                user = StaffFactory(username=account.replace(" ", "-").lower(), roles=roles)
            signed_in[account] = (user, sign_in(Client(), user))
    return signed_in


@pytest.fixture(scope="module")
def records(module_transaction):
    """An organization with one of (nearly) everything: a renewed invoice with numbers,
    calls, a coupon and credit, its notices, and a declined card with its collection; made
    once for the module."""
    with module_transaction() as now:
        invoice = renewed_invoice()
        declined_invoice(SubscriptionFactory(now=now).organization, now=now)
    return invoice


def test_every_registered_model_has_a_rule():
    registered = {model._meta.label_lower for model, _ in REGISTRY}

    assert registered - RULES.keys() == set(), "models without an access rule"
    assert RULES.keys() - registered == set(), "rules for models the admin no longer has"


def test_every_own_page_and_action_has_a_rule(accounts):
    superuser, _ = accounts["superuser"]
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in REGISTRY:
        if model._meta.app_label == PROCESSOR_MIRROR:
            continue  # its pages and actions are dj-stripe's, all refused to every role
        named = set(RULES[model._meta.label_lower]) - {"view", "add", "delete"}
        offered = {*own_pages(model_admin), *model_admin.get_actions(request)}
        assert offered == named, model._meta.label_lower


@pytest.mark.parametrize(
    ("model", "model_admin"),
    REGISTRY,
    ids=[model._meta.label_lower for model, _ in REGISTRY],
)
def test_who_may_open_each_page_and_take_each_action(accounts, records, now, model, model_admin):
    label = model._meta.label_lower
    rules = RULES[label]
    opts = model._meta
    obj = model._default_manager.order_by("pk").first()
    pk = obj.pk if obj is not None else 0
    pages = {
        "view": [
            reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]),
        ],
        "add": [reverse(f"admin:{opts.app_label}_{opts.model_name}_add")],
        "delete": [reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[pk])],
    }
    if obj is not None:
        pages["view"].append(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[pk])
        )
    mirror = opts.app_label == PROCESSOR_MIRROR
    for name in [] if mirror else own_pages(model_admin):
        pages[name] = [reverse(f"admin:{name}", args=_own_page_args(name, records, obj, pk))]

    wrong = []
    for account, (user, client) in accounts.items():
        if mirror and account == "superuser":
            continue  # what superusers may do in dj-stripe's admin is dj-stripe's
        for what, urls in pages.items():
            allowed = account in rules[what]
            for url in urls:
                status = client.get(url).status_code
                # Allowed: the page (200), or where a missing object sends (302) or 404.
                if (status != 403) != allowed or status >= 500:
                    wrong.append(f"{account} GET {url}: {status}, expected allowed={allowed}")
        request = RequestFactory().get("/admin/")
        request.user = user
        offered = set(model_admin.get_actions(request)) if rules["view"] & {account} else set()
        expected = {
            name
            for name, who in rules.items()
            if name not in pages and name not in ("view", "add", "delete") and account in who
        }
        if mirror:
            expected = set()  # no role, no action
        if offered != expected:
            wrong.append(f"{account} actions on {label}: {sorted(offered)} != {sorted(expected)}")

    assert wrong == []


def _own_page_args(name: str, invoice, obj, pk: int) -> list[int]:
    """What an own page's address takes: collection pages the invoice, a past version the
    object and its historical record."""
    if name.startswith("payments_invoice_"):
        return [invoice.pk]
    if name in (
        "payments_dunning_board",
        "billing_revenue_metrics",
        "billing_revenue_organizations",
    ):
        return []
    if name.endswith("_simple_history"):
        return [pk, obj.history.order_by("history_id").first().history_id]
    return [pk]
