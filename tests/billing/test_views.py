import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.models import Plan
from billing.subscriptions import services as subscription_services
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    sign_in,
)
from tests.helpers import people_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(now):
    """An organization on Professional monthly with an admin and a member, and a rival org."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly"), now=now
    )
    people_of(organization)
    return organization


PAGES = ["billing:overview", "billing:plans"]
QUERY_BUDGETS = {"billing:overview": 20, "billing:plans": 10}

# Who gets what on each org-scoped page: member reads the summary only; outsiders get 404.
ACCESS = {
    "billing:overview": {"member": 200, "rival_admin": 404, "admin": 200, "support": 200},
    "billing:plans": {"member": 403, "rival_admin": 404, "admin": 200, "support": 200},
}


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, acme, page):
    url = reverse(page, args=[acme.slug])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(
    ("page", "username", "status"),
    [
        (page, username, status)
        for page, rules in ACCESS.items()
        for username, status in rules.items()
    ],
)
def test_access_matrix(client, acme, page, username, status):
    sign_in(client, UserFactory(username=username))

    response = client.get(reverse(page, args=[acme.slug]))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert b"Professional" not in response.content


def test_a_page_of_an_organization_that_does_not_exist_is_404_even_for_staff(client, acme):
    sign_in(client, UserFactory(username="support"))

    assert client.get(reverse("billing:overview", args=["nope"])).status_code == 404


def test_admin_sees_plan_status_period_renewal_and_interval(client, acme):
    client.force_login(UserFactory(username="admin"))

    page = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

    assert "Professional" in page
    assert "Active" in page
    assert "Monthly" in page
    assert "16 Mar – 15 Apr 2026" in page  # subscribed on the frozen day, 16 Mar
    assert "16 Apr 2026" in page  # next renewal
    assert "$199.00" in page


def test_member_sees_plan_and_status_but_nothing_financial_and_whom_to_ask(client, acme):
    client.force_login(UserFactory(username="member"))

    page = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

    assert "Professional" in page
    assert "Active" in page
    assert "$199.00" not in page
    assert "Next renewal" not in page
    assert "Admin" in page  # the administrator to ask, by name
    assert "mailto:admin@example.com" in page


def test_member_is_told_whom_to_ask_on_financial_pages(client, acme):
    client.force_login(UserFactory(username="member"))

    response = client.get(reverse("billing:plans", args=[acme.slug]))

    assert response.status_code == 403
    assert "Only administrators can see this page" in response.content.decode()
    assert "mailto:admin@example.com" in response.content.decode()


def test_pending_cancellation_shows_the_last_day_instead_of_a_renewal(client, acme):
    subscription = acme.subscriptions.get()
    subscription.cancel_at_period_end = True
    subscription.save()
    client.force_login(UserFactory(username="admin"))

    page = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

    assert "will not renew" in page
    assert "15 Apr 2026" in page
    assert "Next renewal" not in page


def test_organization_without_subscription_is_invited_to_choose_a_plan(client, now):
    membership = MembershipFactory()
    client.force_login(membership.user)

    page = client.get(
        reverse("billing:overview", args=[membership.organization.slug])
    ).content.decode()

    assert "No active subscription" in page
    assert "Compare plans" in page


def test_plans_page_lists_plans_side_by_side_with_the_current_one_marked(client, acme):
    client.force_login(UserFactory(username="admin"))

    response = client.get(reverse("billing:plans", args=[acme.slug]))

    offers = response.context["comparison"].offers
    assert [offer.plan.code for offer in offers] == [
        "starter-monthly",
        "professional-monthly",
        "business-monthly",
    ]
    assert [offer.is_current for offer in offers] == [False, True, False]
    page = response.content.decode()
    assert "Current plan" in page
    assert "18,000 s (300 min)" in page
    assert "$0.004 per second" in page
    assert "50 GiB" in page and "$0.25 per GiB" in page  # storage is billed in 2^30 bytes
    assert " GB" not in page
    assert "Calls pause until the allowance resets" in page
    assert "Workflow automation" in page


def test_annual_plans_show_what_they_save_against_twelve_monthly_payments(client, acme):
    client.force_login(UserFactory(username="admin"))

    response = client.get(reverse("billing:plans", args=[acme.slug]), {"interval": "year"})

    starter = response.context["comparison"].offers[0]
    assert starter.plan.code == "starter-annual"
    assert str(starter.annual_saving) == "$88.20"
    assert starter.annual_saving_percent == 15
    assert "Save $88.20 a year (15%)" in response.content.decode()
    assert "$41.65 a month" in response.content.decode()


def enterprise_plan_of(organization, name):
    """A custom Enterprise plan negotiated with `organization`."""
    return catalog_services.plan_ensure(
        code=f"enterprise-{organization.slug}",
        name=f"Enterprise ({name})",
        tier="enterprise",
        interval="month",
        price=4500,
        features=[],
        organization=organization,
        overage_rate_per_second=0,
        overage_rate_per_gb=0,
    )


def test_custom_plan_is_offered_only_to_its_organization(client, acme):
    enterprise_plan_of(acme, "Acme")
    client.force_login(UserFactory(username="admin"))
    acme_page = client.get(reverse("billing:plans", args=[acme.slug])).content.decode()
    client.force_login(UserFactory(username="rival_admin"))
    rival_page = client.get(reverse("billing:plans", args=["rival"])).content.decode()

    assert "Enterprise (Acme)" in acme_page
    assert "Enterprise (Acme)" not in rival_page


def test_retired_version_the_org_still_has_is_shown_as_current(client, acme):
    old = Plan.objects.get(code="professional-monthly")
    catalog_services.plan_new_version(plan=old, changes={"price": old.price + old.price})
    client.force_login(UserFactory(username="admin"))

    offers = client.get(reverse("billing:plans", args=[acme.slug])).context["comparison"].offers

    current = [offer for offer in offers if offer.is_current]
    assert [offer.plan.version for offer in current] == [1]
    assert sorted(offer.plan.version for offer in offers if offer.plan.code == old.code) == [1, 2]


def test_plans_page_opens_on_the_organizations_own_interval_with_its_plan_marked(client, now):
    catalog_services.catalog_load()
    northwind = OrganizationFactory(slug="northwind")
    annual = Plan.objects.get(code="professional-annual")
    SubscriptionFactory(organization=northwind, plan=annual, now=now)
    client.force_login(MembershipFactory(organization=northwind).user)

    response = client.get(reverse("billing:plans", args=["northwind"]))
    monthly = client.get(reverse("billing:plans", args=["northwind"]), {"interval": "month"})

    comparison = response.context["comparison"]
    assert comparison.interval == "year"
    assert [offer.plan.code for offer in comparison.offers if offer.is_current] == [annual.code]
    assert '<a href="?interval=year" aria-current="page">Annual' in response.content.decode()
    # On the monthly plans, a pointer back to the plan it has
    assert monthly.context["comparison"].interval == "month"
    assert "your plan, Professional (Annual), is with the" in monthly.content.decode()


@pytest.fixture
def initech(now):
    """An organization on a custom Enterprise plan, with an admin."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Initech", slug="initech")
    custom = enterprise_plan_of(organization, "Initech")
    SubscriptionFactory(organization=organization, plan=custom, now=now)
    MembershipFactory(organization=organization, user=UserFactory(username="erin"))
    return organization


def test_a_custom_plan_is_changed_by_the_account_manager_not_by_buttons(client, initech, settings):
    settings.BILLING_SELLER = {**settings.BILLING_SELLER, "email": "accounts@example.com"}
    client.force_login(UserFactory(username="erin"))

    page = client.get(reverse("billing:plans", args=["initech"])).content.decode()

    assert "contact your account manager at" in page
    assert 'href="mailto:accounts@example.com"' in page
    for plan in Plan.objects.filter(is_public=True):
        assert reverse("billing:plan_change", args=["initech", plan.pk]) not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_change_page_refuses_a_custom_plans_downgrade_to_a_public_plan(client, initech, method):
    client.force_login(UserFactory(username="erin"))
    starter = Plan.objects.get(code="starter-monthly")

    response = getattr(client, method)(
        reverse("billing:plan_change", args=["initech", starter.pk]), follow=True
    )

    subscription = initech.subscriptions.get()
    assert (subscription.plan.code, subscription.scheduled_plan) == ("enterprise-initech", None)
    assert response.redirect_chain == [(reverse("billing:plans", args=["initech"]), 302)]
    assert "contact your account manager" in response.content.decode()


def test_a_subscription_set_to_end_shows_its_last_day_instead_of_active(client, now):
    # Los Angeles: the period ends at local midnight on 16 Apr (07:00 UTC): its last day is 15 Apr.
    organization = OrganizationFactory(slug="acme", timezone="America/Los_Angeles")
    subscription = SubscriptionFactory(organization=organization, now=now)
    subscription_services.subscription_cancel(
        subscription=subscription, reason="Too expensive", now=now
    )
    client.force_login(MembershipFactory(organization=organization).user)

    page = client.get(reverse("billing:overview", args=["acme"])).content.decode()

    assert '<span class="status status-ending">Ends 15 Apr</span>' in page
    assert ">Active<" not in page


class TestStaffChooser:
    def test_staff_landing_on_billing_choose_any_organization(self, client, acme):
        subscription_services.subscription_cancel(
            subscription=acme.subscriptions.get(), reason="Moving on", now=acme.created_at
        )
        sign_in(client, UserFactory(username="support"))

        response = client.get(reverse("billing:home"))

        assert response.status_code == 200
        page = response.content.decode()
        assert '<input type="search" id="org-search" name="q"' in page
        assert f'href="{reverse("billing:overview", args=["acme"])}">Acme Dental</a>' in page
        assert f'href="{reverse("billing:overview", args=["rival"])}">Rival Corp</a>' in page
        assert "Professional" in page and ">Ends 15 Apr<" in page  # its plan and status
        assert "No live subscription" in page  # Rival Corp never subscribed

    def test_staff_search_by_name_or_slug(self, client, acme):
        sign_in(client, UserFactory(username="support"))

        by_name = client.get(reverse("billing:home"), {"q": "dent"})
        by_slug = client.get(reverse("billing:home"), {"q": "RIVAL"})
        nothing = client.get(reverse("billing:home"), {"q": "globex"})

        assert [o.slug for o in by_name.context["organizations"]] == ["acme"]
        assert [o.slug for o in by_slug.context["organizations"]] == ["rival"]
        assert "No organization's name or slug holds “globex”" in nothing.content.decode()

    def test_the_chooser_runs_a_constant_number_of_queries(
        self, client, acme, django_assert_max_num_queries
    ):
        for n in range(40):
            SubscriptionFactory(organization=OrganizationFactory(name=f"Org {n:02d}"))
        sign_in(client, UserFactory(username="support"))

        # session, user, the second factor's device, the role's permissions (the user's and
        # their groups'), memberships, count, the page, their live subscriptions
        with django_assert_max_num_queries(9):
            response = client.get(reverse("billing:home"), {"page": "2"})

        assert len(response.context["organizations"].object_list) == 17  # 42 in all


class TestSwitchingOrganizations:
    def test_person_in_one_organization_goes_straight_to_its_billing_page(self, client, acme):
        client.force_login(UserFactory(username="admin"))

        response = client.get(reverse("billing:home"))

        assert response["Location"] == reverse("billing:overview", args=[acme.slug])

    def test_person_in_several_organizations_chooses_and_can_switch_from_every_page(
        self, client, acme
    ):
        admin = UserFactory(username="admin")
        MembershipFactory(
            user=admin, organization=OrganizationFactory(name="Beta Labs", slug="beta")
        )
        client.force_login(admin)

        chooser = client.get(reverse("billing:home")).content.decode()
        overview = client.get(reverse("billing:overview", args=["beta"])).content.decode()

        for page in (chooser, overview):
            assert reverse("billing:overview", args=["acme"]) in page
            assert reverse("billing:overview", args=["beta"]) in page

    def test_the_root_url_leads_to_billing(self, client):
        assert client.get("/")["Location"] == reverse("billing:home")


def test_signing_in_and_out(client, acme):
    response = client.post(
        reverse("login"), {"username": "admin", "password": "a-long-test-password"}
    )
    assert response["Location"] == reverse("billing:home")

    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert client.get(reverse("billing:overview", args=[acme.slug])).status_code == 302


def test_forms_refuse_posts_without_a_csrf_token(acme):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    assert client.post(reverse("logout")).status_code == 403
    assert client.post(reverse("login"), {"username": "admin", "password": "x"}).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_pages_run_a_constant_number_of_queries(client, acme, page, django_assert_max_num_queries):
    for _ in range(25):
        organization = OrganizationFactory()
        SubscriptionFactory(
            organization=organization, plan=Plan.objects.get(code="starter-monthly")
        )
        MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    client.force_login(UserFactory(username="admin"))

    # The overview reads this month's call time too (the counter, AI employees and numbers),
    # the upcoming invoice (the coupon, tax rates, balance, pending prorations and number fees),
    # the budgets (more with some: tests/billing/test_overview_page.py), the default payment
    # method, the latest invoices, the open alerts, the plans offered, and the bell its unread
    # notices.
    with django_assert_max_num_queries(QUERY_BUDGETS[page]):
        response = client.get(reverse(page, args=[acme.slug]))

    assert response.status_code == 200
