"""The staff roles: the groups the migration made, every staff action refused in the service
for a role that may not take it (saying which role may), and staff in no role seeing nothing
of any organization's billing."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from djmoney.money import Money

from billing.accounts import services as account_services
from billing.accounts.roles import ROLE_PERMISSIONS, Role
from billing.catalog import services as catalog_services
from billing.errors import BillingError, ErrorCode
from billing.invoicing import services as invoicing_services
from billing.lifecycle import services as lifecycle_services
from billing.models import Delivery, Plan
from billing.notifications import services as notification_services
from billing.subscriptions import services as subscription_services
from payments import services as payment_services
from tests.factories import (
    CouponFactory,
    FeatureFactory,
    MembershipFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    TaxRateFactory,
    UserFactory,
    card,
    sign_in,
)

pytestmark = pytest.mark.django_db


def test_the_groups_hold_exactly_the_permissions_each_role_lists():
    for role, listed in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        held = {
            f"{app_label}.{codename}"
            for app_label, codename in group.permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        assert held == set(listed), role


def test_finance_holds_every_support_permission_and_catalog_none_of_the_billing_reads():
    support = set(ROLE_PERMISSIONS[Role.SUPPORT])

    assert support <= set(ROLE_PERMISSIONS[Role.FINANCE])
    assert "billing.view_billing" not in ROLE_PERMISSIONS[Role.CATALOG]
    assert "billing.view_invoice" not in ROLE_PERMISSIONS[Role.CATALOG]


# --- every staff action, checked in its service --------------------------------------------


@pytest.fixture
def world(now, email_invoice):
    """A paying organization (its first invoice paid by card), one with its first invoice
    still open (e-mailed, its card declined) and a plan change scheduled, and a trialing
    one."""
    paid = SubscriptionFactory(plan=PlanFactory(code="pro", price=Money("99.00", "USD")), now=now)
    card(paid.organization, now=now)
    payment_services.invoice_collect(invoice=paid.organization.invoices.get(), now=now)
    owing = SubscriptionFactory(plan=PlanFactory(code="biz", price=Money("199.00", "USD")), now=now)
    cheaper = PlanFactory(code="lite", price=Money("49.00", "USD"))
    lifecycle_services.subscription_plan_change(subscription=owing, plan=cheaper, now=now)
    card(owing.organization, "4000000000000341", now=now)
    email_invoice(owing.organization.invoices.get(status="open"))
    trialing = SubscriptionFactory(
        plan=PlanFactory(code="trial", trial_days=14), trial=True, now=now
    )
    return {
        "paid": paid,
        "owing": owing,
        "trialing": trialing,
        "open_invoice": owing.organization.invoices.get(status="open"),
        "attempt": paid.organization.invoices.get().payment_attempts.get(),
        "feature": FeatureFactory(code="sso", name="Single sign-on"),
        "coupon": CouponFactory(),
        "now": now,
    }


ACTIONS = {
    "retry a payment": (
        Role.SUPPORT,
        lambda w, actor: payment_services.invoice_collect(
            invoice=w["open_invoice"], now=w["now"], on_request=True, actor=actor
        ),
    ),
    "extend a trial": (
        Role.SUPPORT,
        lambda w, actor: subscription_services.subscription_trial_extend(
            subscription=w["trialing"],
            ends_on=(w["now"] + dt.timedelta(days=30)).date(),
            actor=actor,
            now=w["now"],
        ),
    ),
    "grant a feature trial": (
        Role.SUPPORT,
        lambda w, actor: catalog_services.feature_trial_grant(
            organization=w["paid"].organization,
            feature=w["feature"],
            days=7,
            actor=actor,
            now=w["now"],
        ),
    ),
    "resend an invoice": (
        Role.SUPPORT,
        lambda w, actor: notification_services.delivery_redeliver(
            delivery=Delivery.objects.filter(
                notification__organization=w["owing"].organization
            ).first(),
            actor=actor,
            now=w["now"],
        ),
    ),
    "call off a scheduled change": (
        Role.SUPPORT,
        lambda w, actor: subscription_services.subscription_scheduled_change_cancel(
            subscription=w["owing"], actor=actor, now=w["now"]
        ),
    ),
    "issue a credit note": (
        Role.FINANCE,
        lambda w, actor: invoicing_services.credit_note_issue(
            invoice=w["attempt"].invoice,
            amount=Money("10.00", "USD"),
            reason="Outage",
            actor=actor,
            now=w["now"],
        ),
    ),
    "grant credit": (
        Role.FINANCE,
        lambda w, actor: invoicing_services.balance_credit_grant(
            organization=w["paid"].organization,
            kind="goodwill",
            amount=Money("5.00", "USD"),
            description="Sorry",
            actor=actor,
            now=w["now"],
        ),
    ),
    "refund a payment": (
        Role.FINANCE,
        lambda w, actor: payment_services.payment_refund(
            attempt=w["attempt"],
            amount=Money("10.00", "USD"),
            reason="Outage",
            actor=actor,
            now=w["now"],
        ),
    ),
    "void an invoice": (
        Role.FINANCE,
        lambda w, actor: invoicing_services.invoice_void(
            invoice=w["open_invoice"], reason="Billed twice", actor=actor, now=w["now"]
        ),
    ),
    "give a coupon": (
        Role.FINANCE,
        lambda w, actor: invoicing_services.discount_apply(
            organization=w["paid"].organization, coupon=w["coupon"], actor=actor, now=w["now"]
        ),
    ),
    "record a bank transfer": (
        Role.FINANCE,
        lambda w, actor: payment_services.invoice_record_bank_transfer(
            invoice=w["open_invoice"],
            reference="WIRE-1",
            received_at=w["now"],
            actor=actor,
            now=w["now"],
        ),
    ),
    "cancel a subscription": (
        Role.FINANCE,
        lambda w, actor: subscription_services.subscription_cancel(
            subscription=w["paid"], reason="Budget", actor=actor, now=w["now"]
        ),
    ),
    "change plans": (
        Role.FINANCE,
        lambda w, actor: lifecycle_services.subscription_plan_change(
            subscription=w["paid"],
            plan=Plan.objects.get(code="biz"),
            actor=actor,
            now=w["now"],
        ),
    ),
    "publish a plan version": (
        Role.CATALOG,
        lambda w, actor: catalog_services.plan_new_version(
            plan=w["paid"].plan, changes={"price": Money("109.00", "USD")}, actor=actor
        ),
    ),
}

WHO_MAY = {
    Role.SUPPORT: {"Support", "Finance", "superuser"},
    Role.FINANCE: {"Finance", "superuser"},
    Role.CATALOG: {"Catalog", "superuser"},
}


def _staff(account: str):
    """A staff account: "no role", one of the roles, or "superuser"."""
    if account == "superuser":
        return StaffFactory(username="root", is_superuser=True, roles=[])
    if account == "no role":
        return StaffFactory(username="norole", roles=[])
    return StaffFactory(username=account.lower(), roles=[account])


@pytest.mark.parametrize("action", ACTIONS)
def test_each_staff_action_is_refused_in_its_service_for_roles_that_may_not_take_it(world, action):
    role, perform = ACTIONS[action]
    for account in ("no role", "Support", "Finance", "Catalog", "superuser"):
        actor = _staff(account)
        refusal = None
        with transaction.atomic():
            try:
                perform(world, actor)
            except BillingError as error:
                refusal = error
            transaction.set_rollback(True)  # each account tries from the same start

        if account in WHO_MAY[role]:
            assert refusal is None, (account, refusal and refusal.message)
        else:
            assert refusal is not None and refusal.code == ErrorCode.ROLE_REQUIRED, account
            assert f"the {role} role" in refusal.message
            assert refusal.status == 403


def test_a_job_acts_without_a_person(world):
    """Scheduled jobs (renewals, retries) pass no actor: no role is asked of them."""
    invoice = world["open_invoice"]

    payment_services.invoice_collect(invoice=invoice, now=world["now"])

    assert invoice.payment_attempts.exists()


def test_the_refusal_says_what_was_asked_and_which_role_allows_it(world):
    support = _staff("Support")

    with pytest.raises(BillingError) as refused:
        invoicing_services.invoice_void(
            invoice=world["open_invoice"], reason="Billed twice", actor=support
        )

    assert refused.value.message == "Voiding an invoice needs the Finance role."
    world["open_invoice"].refresh_from_db()
    assert world["open_invoice"].status == "open"


def test_an_organizations_own_administrator_acts_on_its_subscription_but_not_a_member(world):
    organization = world["paid"].organization
    admin = MembershipFactory(organization=organization, role="admin").user
    member = MembershipFactory(organization=organization, role="member").user

    with pytest.raises(BillingError) as refused:
        subscription_services.subscription_cancel(
            subscription=world["paid"], reason="Budget", actor=member, now=world["now"]
        )
    assert refused.value.code == ErrorCode.ROLE_REQUIRED

    subscription_services.subscription_cancel(
        subscription=world["paid"], reason="Budget", actor=admin, now=world["now"]
    )
    world["paid"].refresh_from_db()
    assert world["paid"].cancel_at_period_end


def test_another_organizations_administrator_is_refused(world):
    stranger = MembershipFactory(organization=world["owing"].organization, role="admin").user

    with pytest.raises(BillingError) as refused:
        subscription_services.subscription_cancel(
            subscription=world["paid"], reason="Budget", actor=stranger, now=world["now"]
        )

    assert refused.value.code == ErrorCode.ROLE_REQUIRED


# --- staff in no role ----------------------------------------------------------------------


@pytest.fixture
def acme(now):
    return SubscriptionFactory(now=now).organization


def test_staff_in_no_role_see_no_organization_and_no_billing_page(client, acme):
    sign_in(client, StaffFactory(username="newcomer", roles=[]))

    home = client.get(reverse("billing:home"))
    assert acme.name not in home.content.decode()
    for name in ("billing:overview", "billing:invoices", "billing:export"):
        assert client.get(reverse(name, args=[acme.slug])).status_code == 404
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "You don’t have permission to view or edit anything." in index.content.decode()
    assert client.get(reverse("admin:billing_invoice_changelist")).status_code == 403


@pytest.mark.parametrize("role", ["Support", "Finance"])
def test_support_and_finance_read_any_organizations_billing_and_download_its_export(
    client, acme, role
):
    sign_in(client, StaffFactory(username="reader", roles=[role]))

    assert acme.name in client.get(reverse("billing:home")).content.decode()
    assert client.get(reverse("billing:invoices", args=[acme.slug])).status_code == 200
    assert client.get(reverse("billing:export", args=[acme.slug])).status_code == 200


def test_catalog_keeps_plans_but_reads_no_organizations_billing(client, acme):
    sign_in(client, StaffFactory(username="cataloguer", roles=["Catalog"]))

    assert client.get(reverse("billing:invoices", args=[acme.slug])).status_code == 404
    assert client.get(reverse("admin:billing_plan_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_invoice_changelist")).status_code == 403


def test_nobody_changes_or_deletes_the_invoice_number_counter_in_the_admin(client, now):
    SubscriptionFactory(now=now)  # issues the first number
    sign_in(client, StaffFactory(username="root", is_superuser=True, roles=[]))
    from sequences.models import Sequence

    counter = Sequence.objects.get()
    change = reverse("admin:sequences_sequence_change", args=[counter.pk])

    assert client.get(reverse("admin:sequences_sequence_changelist")).status_code == 200
    assert client.post(change, {"name": counter.name, "last": 0}).status_code == 403
    delete = reverse("admin:sequences_sequence_delete", args=[counter.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Sequence.objects.get().last == counter.last


def test_a_plain_user_cannot_be_given_staff_reads_by_a_group_alone(client, acme):
    """The reads are for staff: a customer account put in a group by mistake still sees only
    its own organizations."""
    person = UserFactory(username="customer")
    person.groups.add(Group.objects.get(name="Support"))
    sign_in(client, person)

    assert client.get(reverse("billing:invoices", args=[acme.slug])).status_code == 404


@pytest.mark.parametrize(
    ("record", "role"),
    [
        (lambda: TaxRateFactory.build(name="VAT", country="DE"), Role.FINANCE),
        (lambda: PlanFactory.build(code="growth"), Role.CATALOG),
    ],
    ids=["tax rate", "plan"],
)
def test_records_staff_edit_field_by_field_are_saved_only_by_their_role(record, role):
    """Tax rates, coupons, plans, features and number prices: the admin saves them through
    `staff_record_save`, which checks the role too."""
    for account in ("no role", "Support", "Finance", "Catalog"):
        refusal = None
        with transaction.atomic():
            try:
                account_services.staff_record_save(
                    record=record(), actor=_staff(account), changes={}
                )
            except BillingError as error:
                refusal = error
            transaction.set_rollback(True)

        if account == role:
            assert refusal is None, account
        else:
            assert refusal.code == ErrorCode.ROLE_REQUIRED, account
            assert f"the {role} role" in refusal.message
