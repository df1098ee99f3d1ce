import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.lifecycle.demo import DEMO_PASSWORD
from billing.models import Membership, Organization, Plan, Subscription
from tests.factories import UserFactory

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
    assert get_user_model().objects.get(username="staff").is_superuser
    for login, role in (("support", "Support"), ("finance", "Finance"), ("catalog", "Catalog")):
        person = get_user_model().objects.get(username=login)
        assert person.is_staff and not person.is_superuser
        assert list(person.groups.values_list("name", flat=True)) == [role]
        assert f"{login:<8} / billing-demo" in output
    alice = get_user_model().objects.get(username="alice")
    assert not alice.is_staff and not alice.groups.exists()
    assert "alice    / billing-demo" in output
    assert "staff    / billing-demo" in output
    assert all(now in subscription.billing_period for subscription in subscriptions)
    assert "manage.py demo_totp_code` prints it" in output


@pytest.mark.parametrize("login", ["staff", "finance"])
def test_the_demo_staff_logins_sign_in_with_the_code_demo_totp_code_prints(
    client, now, capsys, login
):
    call_command("seed_demo")
    capsys.readouterr()
    client.post("/admin/login/", {"username": login, "password": DEMO_PASSWORD})
    assert client.get("/admin/").status_code == 302  # the code first

    call_command("demo_totp_code")
    code = capsys.readouterr().out.strip()
    client.post("/accounts/two-factor/", {"code": code})

    assert client.get("/admin/").status_code == 200


def test_demo_totp_code_prints_no_code_but_the_demo_one(now):
    TOTPDevice.objects.create(user=UserFactory(is_staff=True), name="Phone", confirmed=True)

    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_totp_code")


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
