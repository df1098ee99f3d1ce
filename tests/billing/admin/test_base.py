"""What every app's admin shares: the one way a staff action runs through its confirmation
page, the one confirmation template every action page is built on, and lists that still say
how many rows they hold."""

import datetime as dt

import pytest
from django import forms
from django.contrib import admin, messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.urls import reverse

from billing.admin.base import action_confirmed
from billing.errors import BillingError, ErrorCode
from billing.models import Organization
from payments import services as payment_services
from tests.factories import (
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    card,
)

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)


class NoteForm(forms.Form):
    note = forms.CharField()


@pytest.fixture
def organization():
    return OrganizationFactory(name="Acme Dental")


@pytest.fixture
def act(rf, staff, organization):
    """Runs an action on Acme Dental through the helper, as the organization admin would."""
    model_admin = admin.site.get_model_admin(Organization)

    def run(method="get", data=None, **options):
        request = getattr(rf, method)("/admin/billing/organization/1/act/", data or {})
        request.user = staff
        request._messages = CookieStorage(request)
        response = action_confirmed(
            model_admin,
            request,
            original=organization,
            template="admin/confirmation.html",
            title=f"Act on {organization}",
            **options,
        )
        said = [(message.level, str(message)) for message in request._messages]
        return response, said

    return run


class Performed:
    """Stands for the one service an action calls, and remembers its calls."""

    def __init__(self, result="done", refusal=None):
        self.calls = 0
        self.result = result
        self.refusal = refusal

    def __call__(self):
        self.calls += 1
        OrganizationFactory(name="Written before the refusal")
        if self.refusal:
            raise BillingError(ErrorCode.ALREADY_SUBSCRIBED, self.refusal)
        return self.result


class TestActionConfirmed:
    def test_a_get_shows_the_confirmation_page_and_does_nothing(self, act, organization):
        perform = Performed()

        response, said = act(perform=perform, done=str, form=NoteForm())

        assert response.status_code == 200
        assert response.template_name == "admin/confirmation.html"
        assert response.context_data["original"] == organization
        assert response.context_data["title"] == "Act on Acme Dental"
        assert response.context_data["can_submit"]
        page = response.render().content.decode()
        assert 'name="note"' in page
        assert reverse("admin:billing_organization_change", args=[organization.pk]) in page
        assert (perform.calls, said) == (0, [])

    def test_a_post_with_an_invalid_form_shows_its_errors_and_does_nothing(self, act):
        perform = Performed()
        form = NoteForm({"note": ""})

        response, said = act("post", perform=perform, done=str, form=form)

        assert response.status_code == 200
        assert response.context_data["form"].errors == {"note": ["This field is required."]}
        assert (perform.calls, said) == (0, [])

    def test_a_post_performs_the_action_once_says_so_and_goes_back(self, act, organization):
        perform = Performed(result="Acme's note")

        response, said = act(
            "post",
            {"note": "Why"},
            perform=perform,
            done=lambda result: f"Recorded {result}.",
            form=NoteForm({"note": "Why"}),
        )

        assert perform.calls == 1
        assert said == [(messages.SUCCESS, "Recorded Acme's note.")]
        assert response.status_code == 302
        assert response.url == reverse("admin:billing_organization_change", args=[organization.pk])

    def test_without_a_form_a_post_is_the_confirmation(self, act):
        perform = Performed()

        response, said = act("post", perform=perform, done=lambda result: "Done.")

        assert (perform.calls, response.status_code) == (1, 302)
        assert said == [(messages.SUCCESS, "Done.")]

    def test_the_action_may_lead_to_what_it_made(self, act):
        made = OrganizationFactory(name="Made")

        response, _ = act(
            "post",
            perform=lambda: made,
            done=lambda result: "Made it.",
            redirect_to=lambda result: reverse(
                "admin:billing_organization_change", args=[result.pk]
            ),
        )

        assert response.url == reverse("admin:billing_organization_change", args=[made.pk])

    def test_a_refusal_is_an_error_message_on_the_page_again_and_writes_nothing(self, act):
        perform = Performed(refusal="Acme Dental already has one.")

        response, said = act("post", perform=perform, done=lambda result: "Done.")

        assert perform.calls == 1
        assert response.status_code == 200
        assert response.template_name == "admin/confirmation.html"
        assert said == [(messages.ERROR, "Acme Dental already has one.")]
        assert not Organization.objects.filter(name="Written before the refusal").exists()

    def test_an_outcome_that_did_not_succeed_is_an_error_but_is_kept(self, act, organization):
        perform = Performed(result=None)

        response, said = act(
            "post",
            perform=perform,
            done=lambda result: "Still unpaid.",
            succeeded=lambda result: result is not None,
        )

        assert said == [(messages.ERROR, "Still unpaid.")]
        assert response.url == reverse("admin:billing_organization_change", args=[organization.pk])
        assert Organization.objects.filter(name="Written before the refusal").exists()


# --- every action page is built on the one confirmation template ---------------------------


@pytest.fixture
def action_pages(organization):
    """Every staff action page of billing and payments, each with the object it is about."""
    plan = PlanFactory()
    FeatureFactory(code="audit_log", name="Audit log")
    subscription = SubscriptionFactory(organization=organization, plan=plan, start=APRIL, now=APRIL)
    invoice = subscription.invoices.get()
    card(organization)
    attempt = payment_services.invoice_collect(invoice=invoice, now=APRIL)
    open_invoice = SubscriptionFactory(start=APRIL, now=APRIL).invoices.get()

    def page(name, obj):
        return reverse(f"admin:{name}", args=[obj.pk]), obj

    return {
        "new plan version": page("billing_plan_new_version", plan),
        "feature trial": page("billing_organization_feature_trial", organization),
        **{
            route: page(f"billing_subscription_{route}", subscription)
            for route in ("change_plan", "call_off_change", "cancel", "reactivate", "extend_trial")
        },
        "void": page("billing_invoice_void", invoice),
        "credit note": page("billing_invoice_credit_note", invoice),
        "refund": page("payments_paymentattempt_refund", attempt),
        "retry": page("payments_invoice_retry", open_invoice),
        "bank transfer": page("payments_invoice_bank_transfer", open_invoice),
    }


def test_every_action_page_is_the_shared_confirmation_page_leading_back_to_its_object(
    staff_client, action_pages
):
    for name, (url, obj) in action_pages.items():
        response = staff_client.get(url)

        assert response.status_code == 200, name
        assert "admin/confirmation.html" in [t.name for t in response.templates], name
        page = response.content.decode()
        change = reverse(
            f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]
        )
        assert f'<a href="{change}">{obj}</a>' in page, name  # the breadcrumbs
        assert f'<a href="{change}" class="closelink">' in page, name  # cancel: back to it
        assert 'name="csrfmiddlewaretoken"' in page, name


# --- lists --------------------------------------------------------------------------------


def test_lists_that_count_in_full_still_say_how_many_rows_they_hold(staff_client):
    for name in ("Acme Dental", "Northwind Realty", "Initech"):
        OrganizationFactory(name=name)

    response = staff_client.get(reverse("admin:billing_organization_changelist"), {"q": "al"})

    page = response.content.decode()
    assert "2 organizations" in page
    assert '2 results (<a href="?">3 total</a>)' in page
