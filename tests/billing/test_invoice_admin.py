import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from djmoney.money import Money

from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.models import BalanceEntry, Coupon, CreditNote, Discount, Invoice, TaxRate
from tests.factories import (
    CouponFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    renewed_invoice,
)
from tests.helpers import messages_of, usd

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(now):
    """Acme's open renewal invoice of 16 Mar 2026: $189.05 after $25.00 of credit."""
    return renewed_invoice()


# --- invoices -----------------------------------------------------------------------------


def test_a_finalized_invoice_opens_read_only_and_cannot_be_saved(staff_client, invoice):
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])

    response = staff_client.get(url)

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}  # every field is read-only
    assert not response.context["inline_admin_formsets"][0].has_change_permission
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert "INV-2026-000002.pdf" in page  # the PDF link
    assert staff_client.post(url, {}).status_code == 403


def test_invoices_are_never_deleted_nor_added_by_hand(staff_client, invoice):
    changelist = staff_client.get(reverse("admin:billing_invoice_changelist"))

    invoice_admin = admin.site.get_model_admin(Invoice)
    assert "delete_selected" not in invoice_admin.get_actions(changelist.wsgi_request)
    assert (
        staff_client.get(reverse("admin:billing_invoice_delete", args=[invoice.pk])).status_code
        == 403
    )
    assert staff_client.get(reverse("admin:billing_invoice_add")).status_code == 403


def test_invoice_list_shows_number_organization_period_total_and_status(staff_client, invoice):
    response = staff_client.get(
        reverse("admin:billing_invoice_changelist"), {"q": "INV-2026-000002"}
    )

    assert response.context["cl"].result_count == 1
    page = response.content.decode()
    assert "Acme Dental" in page
    assert "16 Mar – 15 Apr 2026" in page
    assert "$189.05" in page
    assert "Open" in page
    assert reverse("billing:invoice_pdf", args=[invoice.organization.slug, invoice.number]) in page


def test_staff_void_an_invoice_with_a_reason_through_the_confirmation_page(
    staff_client, staff, invoice
):
    url = reverse("admin:billing_invoice_void", args=[invoice.pk])

    confirmation = staff_client.get(url)
    refused = staff_client.post(url, {"reason": ""})
    response = staff_client.post(url, {"reason": "Billed twice by mistake"})

    assert "It cannot be undone" in confirmation.content.decode()
    assert refused.status_code == 200  # the form again: a reason is required
    assert response["Location"] == reverse("admin:billing_invoice_change", args=[invoice.pk])
    invoice.refresh_from_db()
    assert (invoice.status, invoice.void_reason) == ("void", "Billed twice by mistake")
    returned = BalanceEntry.objects.get(kind="returned")
    assert (returned.amount, returned.created_by) == (usd("25.00"), staff)
    assert "INV-2026-000002 is void" in messages_of(response)[0]


def test_voiding_an_invoice_that_is_already_void_is_refused_with_a_message(staff_client, invoice):
    invoicing_services.invoice_void(invoice=invoice, reason="Billed twice")

    response = staff_client.post(
        reverse("admin:billing_invoice_void", args=[invoice.pk]), {"reason": "Again"}
    )

    assert response.status_code == 200
    assert messages_of(response) == ["Only open invoices can be voided; INV-2026-000002 is void."]


def test_staff_issue_a_credit_note_that_credits_the_balance(staff_client, staff, invoice):
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])

    response = staff_client.post(url, {"amount": "10.00", "reason": "Outage on 20 Mar"})

    credit_note = CreditNote.objects.get()
    assert response["Location"] == reverse("admin:billing_invoice_change", args=[invoice.pk])
    assert (credit_note.invoice, credit_note.amount, credit_note.created_by) == (
        invoice,
        usd("10.00"),
        staff,
    )
    assert invoicing_selectors.organization_balance(organization=invoice.organization) == usd(
        "10.00"
    )
    assert f"Credit note {credit_note.number} for $10.00 issued" in messages_of(response)[0]


def test_a_credit_note_larger_than_the_invoice_is_refused_with_a_message(staff_client, invoice):
    response = staff_client.post(
        reverse("admin:billing_invoice_credit_note", args=[invoice.pk]),
        {"amount": "500.00", "reason": "Too generous"},
    )

    assert response.status_code == 200
    assert messages_of(response) == ["A credit note for INV-2026-000002 can be at most $214.05."]
    assert not CreditNote.objects.exists()


def test_credit_notes_are_listed_read_only(staff_client, invoice):
    invoicing_services.credit_note_issue(invoice=invoice, amount=usd("10.00"), reason="Outage")

    response = staff_client.get(reverse("admin:billing_creditnote_changelist"))

    assert "Acme Dental" in response.content.decode()
    assert staff_client.get(reverse("admin:billing_creditnote_add")).status_code == 403


# --- coupons, discounts, taxes and credits ------------------------------------------------


def test_coupon_list_shows_how_many_organizations_use_it(staff_client, now):
    coupon = CouponFactory(code="spring")
    for _ in range(2):
        SubscriptionFactory(plan=PlanFactory(), now=now)
    for organization in OrganizationFactory._meta.model.objects.all():
        invoicing_services.discount_apply(organization=organization, coupon=coupon, now=now)

    response = staff_client.get(reverse("admin:billing_coupon_changelist"))

    assert response.context["cl"].result_list[0].using == 2


def test_staff_make_a_coupon_a_promotion_code_and_see_its_redemptions(staff_client, now):
    response = staff_client.post(
        reverse("admin:billing_coupon_add"),
        {
            "code": "spring-26",
            "name": "Spring",
            "percent_off": "10",
            "duration": "once",
            "is_active": "on",
            "is_promotion": "on",
            "redeemable_from_0": "2026-03-01",
            "redeemable_from_1": "00:00:00",
            "redeemable_until_0": "2026-04-01",
            "redeemable_until_1": "00:00:00",
            "max_redemptions": "100",
        },
    )
    assert response.status_code == 302
    coupon = Coupon.objects.get(code="spring-26")
    assert (coupon.redeemable_from.day, coupon.redeemable_until.month) == (1, 4)
    invoicing_services.promotion_code_redeem(
        organization=OrganizationFactory(), code="spring-26", now=now
    )

    page = staff_client.get(reverse("admin:billing_coupon_changelist")).text

    assert '<td class="field-redemptions_shown">1 of 100</td>' in page


def test_staff_give_a_coupon_to_an_organization(staff_client, now):
    organization = OrganizationFactory()
    coupon = CouponFactory()

    response = staff_client.post(
        reverse("admin:billing_discount_add"),
        {"organization": organization.pk, "coupon": coupon.pk},
    )

    assert response.status_code == 302
    assert Discount.objects.get().organization == organization


def test_a_second_discount_is_refused_with_the_services_message(staff_client, now):
    organization = OrganizationFactory(name="Acme Dental")
    invoicing_services.discount_apply(organization=organization, coupon=CouponFactory(), now=now)

    response = staff_client.post(
        reverse("admin:billing_discount_add"),
        {"organization": organization.pk, "coupon": CouponFactory().pk},
        follow=True,
    )

    assert Discount.objects.count() == 1
    assert "Acme Dental already has a discount." in messages_of(response)


def test_tax_rate_form_saves_the_line_kinds_it_is_charged_on(staff_client):
    response = staff_client.post(
        reverse("admin:billing_taxrate_add"),
        {
            "name": "Telecom regulatory fee",
            "country": "US",
            "region": "",
            "percentage": "2.5",
            "applies_to": ["phone_number", "overage_calls"],
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert TaxRate.objects.get().applies_to == ["phone_number", "overage_calls"]
    form = (
        staff_client.get(reverse("admin:billing_taxrate_change", args=[TaxRate.objects.get().pk]))
        .context["adminform"]
        .form
    )
    assert form["applies_to"].value() == ["phone_number", "overage_calls"]


def test_a_tax_rate_invoices_used_keeps_its_terms(staff_client, invoice):
    rate = TaxRate.objects.get(name="Sales tax")

    form = (
        staff_client.get(reverse("admin:billing_taxrate_change", args=[rate.pk]))
        .context["adminform"]
        .form
    )

    assert list(form.fields) == ["is_active"]


def test_staff_grant_credit_through_the_service(staff_client, staff, now):
    organization = OrganizationFactory(currency="EUR")

    response = staff_client.post(
        reverse("admin:billing_balanceentry_add"),
        {
            "organization": organization.pk,
            "kind": "goodwill",
            "amount": "15.00",
            "description": "Sorry for the outage",
        },
    )

    assert response.status_code == 302
    entry = BalanceEntry.objects.get()
    assert (entry.kind, entry.amount, entry.created_by) == (
        "goodwill",
        Money(Decimal("15.00"), "EUR"),
        staff,
    )


def test_only_promotional_referral_and_goodwill_credit_can_be_granted(staff_client):
    form = staff_client.get(reverse("admin:billing_balanceentry_add")).context["adminform"].form

    assert [value for value, _ in form.fields["kind"].choices] == [
        "promotional",
        "referral",
        "goodwill",
    ]


def test_balance_entries_are_never_changed_or_deleted(staff_client, invoice):
    entry = BalanceEntry.objects.filter(kind="applied").get()

    change = staff_client.get(reverse("admin:billing_balanceentry_change", args=[entry.pk]))

    assert change.context["adminform"].form.fields == {}
    assert (
        staff_client.post(
            reverse("admin:billing_balanceentry_change", args=[entry.pk]), {}
        ).status_code
        == 403
    )
    assert (
        staff_client.get(reverse("admin:billing_balanceentry_delete", args=[entry.pk])).status_code
        == 403
    )


# --- renewing by hand ---------------------------------------------------------------------


def test_renew_now_invoices_a_due_subscription_once_and_then_says_not_due(staff_client, now):
    # Given a subscription whose month ended at midnight
    start = now - dt.timedelta(days=28, hours=10)  # 16 Feb 2026
    subscription = SubscriptionFactory(plan=PlanFactory(), start=start, now=start)
    url = reverse("admin:billing_subscription_changelist")
    renew = {"action": "renew_now", "_selected_action": [subscription.pk]}

    first = staff_client.post(url, renew, follow=True)
    second = staff_client.post(url, renew, follow=True)

    assert subscription.invoices.count() == 2  # the first month's, and the renewal
    assert messages_of(first) == ["Issued 1 invoice: INV-2026-000002."]
    assert messages_of(second) == ["Not due: no period has ended, no invoice was issued."]


# --- speed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["invoice", "creditnote", "coupon", "discount", "taxrate", "balanceentry", "referral"],
)
def test_changelists_run_a_constant_number_of_queries(
    staff_client, now, model, django_assert_max_num_queries
):
    TaxRateFactory()
    coupon = CouponFactory()
    for _ in range(15):
        subscription = SubscriptionFactory(plan=PlanFactory(), now=now)
        invoice = subscription.invoices.get()
        invoicing_services.credit_note_issue(
            invoice=invoice, amount=usd("5.00"), reason="Outage", now=now
        )
        invoicing_services.discount_apply(
            organization=subscription.organization, coupon=coupon, now=now
        )
        CouponFactory(is_promotion=True, max_redemptions=10)
        invoicing_services.referral_record(
            referrer=OrganizationFactory(), referred=subscription.organization, now=now
        )

    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse(f"admin:billing_{model}_changelist"))

    assert response.status_code == 200
    assert Invoice.objects.count() == 15


def test_invoice_page_runs_a_constant_number_of_queries_whatever_its_lines(
    staff_client, now, django_assert_max_num_queries
):
    invoice = renewed_invoice(extra_numbers=36)

    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    assert len(response.context["inline_admin_formsets"][0].formset.forms) == 48
