"""The audit log: every write staff make (an action's service, a form in the admin, a list
action, a deletion) is recorded with who, when, what and why; jobs and customers are not
staff; the log is read in the admin, by organization, and never changed."""

import pytest
from django.contrib import admin
from django.urls import reverse
from djmoney.money import Money

from billing.admin.base import AuditedAdmin
from billing.errors import BillingError, ErrorCode
from billing.invoicing import services as invoicing_services
from billing.models import AuditEntry, TaxRate
from payments import services as payment_services
from tests.factories import (
    MembershipFactory,
    StaffFactory,
    SubscriptionFactory,
    TaxRateFactory,
    card,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(now):
    return SubscriptionFactory(
        organization__name="Acme Dental", organization__slug="acme-dental", now=now
    ).organization


@pytest.fixture
def finance(client):
    person = StaffFactory(username="fiona", roles=["Finance"])
    sign_in(client, person)
    return person


def test_a_staff_action_records_who_when_what_and_why(acme, finance, now):
    invoice = acme.invoices.get()

    invoicing_services.invoice_void(invoice=invoice, reason="Billed twice", actor=finance, now=now)

    entry = AuditEntry.objects.get()
    assert (entry.at, entry.actor, entry.actor_name) == (now, finance, "fiona")
    assert entry.action == "Voiding an invoice"
    assert entry.organization == acme
    assert (entry.object_type, entry.object_id) == ("billing.invoice", str(invoice.pk))
    assert entry.object_repr == str(invoice)
    assert entry.reason == "Billed twice"
    assert entry.changes == {"status": ["open", "void"]}


def test_a_refused_or_failed_action_leaves_no_entry(acme, finance, now):
    support = StaffFactory(username="sam", roles=["Support"])
    invoice = acme.invoices.get()

    with pytest.raises(BillingError) as refused:
        invoicing_services.invoice_void(invoice=invoice, reason="x", actor=support, now=now)
    assert refused.value.code == ErrorCode.ROLE_REQUIRED
    with pytest.raises(BillingError):  # no reason given
        invoicing_services.invoice_void(invoice=invoice, reason=" ", actor=finance, now=now)

    assert not AuditEntry.objects.exists()


def test_jobs_and_the_customers_own_administrators_are_not_staff_actions(acme, now):
    invoice = acme.invoices.get()
    card(acme, now=now)
    alice = MembershipFactory(organization=acme, role="admin").user

    payment_services.invoice_collect(invoice=invoice, now=now)  # the retry job
    payment_services.invoice_collect(invoice=invoice, now=now, on_request=True, actor=alice)

    assert not AuditEntry.objects.exists()


def test_a_change_in_an_admin_form_records_each_field_before_and_after(client, finance):
    rate = TaxRateFactory(percentage="8.875")

    response = client.post(
        reverse("admin:billing_taxrate_change", args=[rate.pk]),
        {
            "name": rate.name,
            "country": "US",
            "region": "",
            "percentage": "9.25",
            "applies_to": rate.applies_to,
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.action == "Changing a tax rate"
    assert entry.actor == finance
    assert entry.organization is None
    assert entry.changes == {"percentage": ["8.875", "9.25"]}


def test_an_admin_form_saved_unchanged_records_nothing(client, finance):
    rate = TaxRateFactory()

    client.post(
        reverse("admin:billing_taxrate_change", args=[rate.pk]),
        {
            "name": rate.name,
            "country": "US",
            "region": "",
            "percentage": rate.percentage,
            "applies_to": rate.applies_to,
            "is_active": "on",
        },
    )

    assert not AuditEntry.objects.exists()


def test_a_list_action_records_one_entry_per_chosen_row(client, acme, now):
    from tests.factories import EmployeeFactory
    from usage.models import AIEmployee

    support = StaffFactory(username="sam", roles=["Support"])
    sign_in(client, support)
    ava, bo = EmployeeFactory(organization=acme, name="Ava"), EmployeeFactory(organization=acme)

    client.post(
        reverse("admin:usage_aiemployee_changelist"),
        {"action": "deactivate", "_selected_action": [ava.pk]},
    )

    assert not AIEmployee.objects.get(pk=ava.pk).is_active
    entry = AuditEntry.objects.get()
    assert entry.action == "Deactivate the selected AI employees"
    assert (entry.object_repr, entry.organization) == (str(ava), acme)
    assert AIEmployee.objects.get(pk=bo.pk).is_active


def test_a_deletion_is_recorded(client):
    root = StaffFactory(username="root", is_superuser=True, roles=[])
    sign_in(client, root)
    rate = TaxRateFactory(name="Old tax")

    client.post(reverse("admin:billing_taxrate_delete", args=[rate.pk]), {"post": "yes"})

    assert not TaxRate.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_repr, entry.actor_name) == (
        "Deleted tax rate",
        str(rate),
        "root",
    )


def test_support_reads_the_log_filtered_by_organization_and_cannot_change_it(
    client, acme, finance, now
):
    other = SubscriptionFactory(organization__name="Initech", now=now).organization
    invoicing_services.balance_credit_grant(
        organization=acme,
        kind="goodwill",
        amount=Money("5.00", "USD"),
        description="Outage on the 3rd",
        actor=finance,
    )
    invoicing_services.balance_credit_grant(
        organization=other,
        kind="goodwill",
        amount=Money("7.00", "USD"),
        description="Late invoice",
        actor=finance,
    )
    sign_in(client, StaffFactory(username="sam", roles=["Support"]))

    page = client.get(reverse("admin:billing_auditentry_changelist"), {"organization": acme.slug})

    assert page.status_code == 200
    assert "Outage on the 3rd" in page.content.decode()
    assert "Late invoice" not in page.content.decode()
    entry = AuditEntry.objects.get(organization=acme)
    change = reverse("admin:billing_auditentry_change", args=[entry.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"reason": "edited"}).status_code == 403
    delete = reverse("admin:billing_auditentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).reason == "Outage on the 3rd"


def test_entries_are_never_changed_or_deleted(acme, finance, now):
    invoicing_services.invoice_void(
        invoice=acme.invoices.get(), reason="Billed twice", actor=finance, now=now
    )
    entry = AuditEntry.objects.get()

    entry.reason = "Nothing happened"
    with pytest.raises(BillingError) as changed:
        entry.save()
    with pytest.raises(BillingError) as deleted:
        entry.delete()

    assert changed.value.code == deleted.value.code == ErrorCode.AUDIT_APPEND_ONLY
    assert AuditEntry.objects.get().reason == "Billed twice"


# The task queue's, sign-in throttling's, authenticators' and dj-stripe's mirror's own
# admins: superusers only, and their rows are the system's records, not billing's.
UNAUDITED = {"django_q", "axes", "otp_totp", "otp_static", "djstripe"}


def test_every_admin_that_can_write_is_audited():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in UNAUDITED:
            continue
        assert isinstance(model_admin, AuditedAdmin), model._meta.label


def test_rows_added_on_a_pages_inline_are_recorded(client, acme, finance):
    """A member added on the organization's page, with nothing else changed."""
    from billing.models import Membership
    from tests.factories import UserFactory

    carol = UserFactory(username="carol")
    page = client.get(reverse("admin:billing_organization_change", args=[acme.pk]))
    data = {}
    for bound in page.context["adminform"].form:
        value = bound.value()
        if value is not None:
            data[bound.html_name] = value
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[f"{formset.prefix}-{name}"] = management[name].value()
    memberships = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.model is Membership
    )
    data[f"{memberships.prefix}-TOTAL_FORMS"] = 1
    data[f"{memberships.prefix}-0-user"] = carol.pk
    data[f"{memberships.prefix}-0-role"] = "member"

    response = client.post(reverse("admin:billing_organization_change", args=[acme.pk]), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert Membership.objects.filter(organization=acme, user=carol).exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.organization) == ("Changed organization", acme)
    [(name, change)] = entry.changes.items()
    assert name.startswith("membership") and "carol" in name
    assert change == ["", "added"]
