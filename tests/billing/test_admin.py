from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from billing.catalog import services as catalog_services
from billing.models import Plan
from billing.subscriptions import services as subscription_services
from tests.factories import MembershipFactory, OrganizationFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    catalog_services.catalog_load()


@pytest.fixture
def subscribed(now, catalog):
    organization = OrganizationFactory(name="Acme Dental")
    MembershipFactory(organization=organization)
    return SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly"), now=now
    )


@pytest.mark.parametrize("model", ["plan", "organization", "subscription", "feature"])
def test_changelists_run_a_constant_number_of_queries(
    staff_client, subscribed, model, django_assert_max_num_queries
):
    for _ in range(20):
        SubscriptionFactory(plan=Plan.objects.get(code="starter-monthly"))

    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse(f"admin:billing_{model}_changelist"))

    assert response.status_code == 200


def test_plan_list_shows_the_feature_matrix_and_filters(staff_client, catalog):
    response = staff_client.get(
        reverse("admin:billing_plan_changelist"), {"tier__exact": "starter"}
    )

    page = response.content.decode()
    assert "Workflow automation" in page  # one column per feature
    assert response.context["cl"].result_count == 2  # starter monthly and annual
    assert "By interval" in page


def test_terms_of_a_plan_in_use_are_read_only_in_the_admin(staff_client, subscribed):
    plan = subscribed.plan
    url = reverse("admin:billing_plan_change", args=[plan.pk])

    form = staff_client.get(url).context["adminform"].form

    assert "price" not in form.fields
    assert "included_call_seconds" not in form.fields
    assert "name" in form.fields


def test_staff_publish_a_new_version_and_subscribers_keep_theirs(staff_client, subscribed):
    plan = subscribed.plan
    url = reverse("admin:billing_plan_new_version", args=[plan.pk])
    form = staff_client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update({"price_0": "219.00", "price_1": "USD"})
    for name in ("overage_rate_per_second", "overage_rate_per_gb", "overage_cap"):
        value = getattr(plan, name)
        data[f"{name}_0"] = value.amount if value is not None else ""
        data[f"{name}_1"] = "USD"

    response = staff_client.post(url, {k: v for k, v in data.items() if v is not None})

    new = Plan.objects.get(code=plan.code, version=2)
    assert response["Location"] == reverse("admin:billing_plan_change", args=[new.pk])
    assert new.price == Money(Decimal("219.00"), "USD")
    subscribed.refresh_from_db()
    assert subscribed.plan == plan
    assert not Plan.objects.get(pk=plan.pk).is_available


def test_organization_page_shows_memberships_and_subscription(staff_client, subscribed):
    response = staff_client.get(
        reverse("admin:billing_organization_change", args=[subscribed.organization_id])
    )

    page = response.content.decode()
    assert "Memberships" in page
    assert "Professional (Monthly)" in page
    assert "currency" in response.context["adminform"].readonly_fields


def test_subscription_page_shows_its_status_history(staff_client, subscribed, now):
    subscription_services.subscription_set_status(
        subscription=subscribed, status="past_due", reason="Card declined", now=now
    )

    response = staff_client.get(reverse("admin:billing_subscription_change", args=[subscribed.pk]))

    page = response.content.decode()
    assert "Card declined" in page
    assert "Past due" in page


def test_subscriptions_cannot_be_added_or_deleted_by_hand(staff_client, subscribed):
    assert staff_client.get(reverse("admin:billing_subscription_add")).status_code == 403
    assert (
        staff_client.get(
            reverse("admin:billing_subscription_delete", args=[subscribed.pk])
        ).status_code
        == 403
    )


def test_people_who_are_not_staff_cannot_reach_the_admin(client, subscribed):
    client.force_login(subscribed.organization.memberships.get().user)

    assert client.get(reverse("admin:billing_plan_changelist")).status_code == 302


def _plan_form_data(code: str, currency: str, cap: str) -> dict:
    """The add-plan form as staff fill it in, every amount in `currency`."""
    return {
        "code": code,
        "version": "1",
        "name": f"Professional {currency}",
        "tier": "professional",
        "interval": "month",
        "price_0": "189.00",
        "price_1": currency,
        "is_public": "on",
        "is_available": "on",
        "trial_days": "0",
        "free_phone_numbers": "3",
        "overage_policy": "charge",
        "overage_rate_per_second_0": "0.004",
        "overage_rate_per_second_1": currency,
        "overage_rate_per_gb_0": "0.25",
        "overage_rate_per_gb_1": currency,
        "overage_cap_0": cap,
        "overage_cap_1": currency,
    }


@pytest.mark.parametrize("currency", ["EUR", "GBP"])
@pytest.mark.parametrize("cap", ["", "400.00"])
def test_staff_add_plans_in_euros_and_pounds_with_or_without_a_cap(staff_client, currency, cap):
    response = staff_client.post(
        reverse("admin:billing_plan_add"), _plan_form_data(f"pro-{currency}", currency, cap)
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    plan = Plan.objects.get(code=f"pro-{currency}")
    assert plan.price == Money(Decimal("189.00"), currency)
    assert plan.overage_rate_per_second.currency.code == currency
    assert plan.overage_cap == (Money(Decimal(cap), currency) if cap else None)


def test_a_plan_mixing_currencies_is_refused_naming_the_field(staff_client):
    data = _plan_form_data("pro-mixed", "EUR", "400.00")
    data["overage_cap_1"] = "USD"

    response = staff_client.post(reverse("admin:billing_plan_add"), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "overage_cap" in errors
    assert "EUR" in str(errors["overage_cap"])
    assert not Plan.objects.filter(code="pro-mixed").exists()
