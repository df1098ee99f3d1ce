import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from billing.models import Membership, Organization, Plan, Subscription

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_three_organizations_on_different_plans_and_prints_logins(now, capsys):
    call_command("seed_demo")

    output = capsys.readouterr().out
    subscriptions = Subscription.objects.select_related("plan").order_by("organization__name")
    assert [(s.organization.slug, s.plan.code) for s in subscriptions] == [
        ("acme-dental", "starter-monthly"),
        ("initech", "enterprise-initech"),
        ("northwind", "professional-annual"),
    ]
    for organization in Organization.objects.all():
        roles = set(organization.memberships.values_list("role", flat=True))
        assert roles == {"admin", "member"}
    assert get_user_model().objects.get(username="staff").is_staff
    assert "alice    / billing-demo" in output
    assert "staff    / billing-demo" in output
    assert all(now in subscription.billing_period for subscription in subscriptions)


def test_seed_demo_is_idempotent(now, capsys):
    call_command("seed_demo")
    counts = [Organization.objects.count(), Plan.objects.count(), Membership.objects.count()]

    call_command("seed_demo")

    assert [
        Organization.objects.count(),
        Plan.objects.count(),
        Membership.objects.count(),
    ] == counts
    assert Subscription.objects.count() == 3


def test_the_enterprise_example_is_private_to_its_organization(now, capsys):
    call_command("seed_demo")

    plan = Plan.objects.get(code="enterprise-initech")
    assert not plan.is_public
    assert plan.organization.slug == "initech"
    assert plan.max_active_employees is None  # unlimited


def test_load_catalog(capsys):
    call_command("load_catalog")

    assert "6 public plans" in capsys.readouterr().out
