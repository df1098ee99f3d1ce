"""Feature access: one check, "may this organization use feature X now?", from its live
plan or a running trial, on the usage page, the overview and (tests/usage) the API."""

import re

import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.catalog.selectors import (
    feature_access_for,
    feature_status,
    feature_upgrade_plan,
    organization_has_feature,
)
from billing.lifecycle import services as lifecycle_services
from billing.models import Feature, Membership, Plan, Subscription
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    FeatureFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from tests.helpers import signed_in, utc

pytestmark = pytest.mark.django_db

ANALYTICS = "analytics_dashboards"


@pytest.fixture
def catalog():
    catalog_services.catalog_load()


def subscribed(plan_code, now, slug="acme"):
    """An organization on a catalog plan since 16 Feb, with an admin and a member."""
    organization = OrganizationFactory(name="Acme Dental", slug=slug)
    SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code=plan_code),
        start=utc(2026, 2, 16),
        now=now,
    )
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    return organization


def trial(organization, code, now, days=14):
    return catalog_services.feature_trial_grant(
        organization=organization, feature=Feature.objects.get(code=code), days=days, now=now
    )


# --- the check ----------------------------------------------------------------------------


class TestTheCheck:
    def test_the_plans_features_are_the_organizations_and_nothing_else(self, catalog, now):
        acme = subscribed("starter-monthly", now)

        access = feature_access_for(organization=acme, now=now)

        assert access.has("core_calling")
        assert access.source("core_calling") == "plan"
        assert not access.has(ANALYTICS)
        assert access.source(ANALYTICS) is None
        assert not organization_has_feature(organization=acme, code=ANALYTICS, now=now)
        assert organization_has_feature(organization=acme, code="basic_reporting", now=now)

    def test_an_organization_without_a_live_subscription_has_no_plan_feature(self, catalog, now):
        never = OrganizationFactory()
        canceled = subscribed("business-monthly", now)
        subscription_services.subscription_set_status(
            subscription=canceled.subscriptions.get(),
            status=Subscription.Status.CANCELED,
            reason="Closing the account",
            now=now,
        )

        assert feature_access_for(organization=never, now=now).plan_codes == frozenset()
        assert not organization_has_feature(organization=canceled, code="core_calling", now=now)

    def test_a_suspended_subscription_keeps_its_plans_features(self, catalog, now):
        acme = subscribed("professional-monthly", now)
        for status in (Subscription.Status.PAST_DUE, Subscription.Status.SUSPENDED):
            subscription_services.subscription_set_status(
                subscription=acme.subscriptions.get(), status=status, reason="Unpaid", now=now
            )

        assert organization_has_feature(organization=acme, code=ANALYTICS, now=now)

    @pytest.mark.parametrize(
        ("moment", "has_it"),
        [
            (utc(2026, 3, 16, 9, 59, 59), False),  # before the trial starts
            (utc(2026, 3, 16, 10), True),  # its first moment
            (utc(2026, 3, 30, 9, 59, 59), True),  # its last second
            (utc(2026, 3, 30, 10), False),  # ended: trials are half-open
        ],
    )
    def test_a_trial_counts_from_its_start_until_its_end(self, catalog, now, moment, has_it):
        acme = subscribed("starter-monthly", now)
        trial(acme, ANALYTICS, now, days=14)

        access = feature_access_for(organization=acme, now=moment)

        assert access.has(ANALYTICS) is has_it
        assert access.trial_ends(ANALYTICS) == (utc(2026, 3, 30, 10) if has_it else None)
        assert access.source(ANALYTICS) == ("trial" if has_it else None)

    def test_a_trial_of_a_feature_the_plan_has_changes_nothing(self, catalog, now):
        acme = subscribed("professional-monthly", now)
        trial(acme, ANALYTICS, now)

        access = feature_access_for(organization=acme, now=now)

        assert access.source(ANALYTICS) == "plan"
        assert access.trial_ends(ANALYTICS) is None

    def test_a_trial_is_the_organizations_own(self, catalog, now):
        acme = subscribed("starter-monthly", now)
        rival = subscribed("starter-monthly", now, slug="rival")
        trial(rival, ANALYTICS, now)

        assert not organization_has_feature(organization=acme, code=ANALYTICS, now=now)

    def test_an_upgrade_unlocks_at_once(self, catalog, now):
        acme = subscribed("starter-monthly", now)
        assert not organization_has_feature(organization=acme, code=ANALYTICS, now=now)

        lifecycle_services.subscription_plan_change(
            subscription=acme.subscriptions.get(),
            plan=Plan.objects.get(code="professional-monthly"),
            now=now,
        )

        assert organization_has_feature(organization=acme, code=ANALYTICS, now=now)

    def test_the_check_is_one_query_whatever_the_features_and_trials(
        self, catalog, now, django_assert_num_queries
    ):
        acme = subscribed("starter-monthly", now)
        for code in ("audit_log", "white_labeling", ANALYTICS):
            trial(acme, code, now)

        with django_assert_num_queries(1):
            access = feature_access_for(organization=acme, now=now)

        assert set(access.trials) == {"audit_log", "white_labeling", ANALYTICS}


class TestTheTierALockedFeatureNames:
    def test_the_cheapest_plan_offered_with_the_feature_on_the_organizations_interval(
        self, catalog, now
    ):
        monthly = subscribed("starter-monthly", now)
        annual = subscribed("starter-annual", now, slug="annual")

        assert feature_upgrade_plan(organization=monthly, code=ANALYTICS).code == (
            "professional-monthly"
        )
        assert feature_upgrade_plan(organization=annual, code=ANALYTICS).code == (
            "professional-annual"
        )
        assert feature_upgrade_plan(organization=monthly, code="audit_log").code == (
            "business-monthly"
        )

    def test_no_plan_offered_has_it(self, catalog, now):
        acme = subscribed("starter-monthly", now)

        # White-labeling comes with custom Enterprise plans only.
        assert feature_upgrade_plan(organization=acme, code="white_labeling") is None

    def test_a_custom_plan_made_for_the_organization_counts(self, catalog, now):
        acme = subscribed("starter-monthly", now)
        custom = PlanFactory(
            name="Enterprise (Acme)",
            tier=Plan.Tier.ENTERPRISE,
            is_public=False,
            organization=acme,
        )
        custom.features.add(Feature.objects.get(code="white_labeling"))
        someone_elses = PlanFactory(is_public=False, organization=OrganizationFactory())
        someone_elses.features.add(Feature.objects.get(code="white_labeling"))

        assert feature_upgrade_plan(organization=acme, code="white_labeling") == custom

    def test_status_of_one_feature_reads_one_query_two_when_locked(
        self, catalog, now, django_assert_num_queries
    ):
        acme = subscribed("starter-monthly", now)

        with django_assert_num_queries(1):
            included = feature_status(organization=acme, code="core_calling", now=now)
        with django_assert_num_queries(2):
            locked = feature_status(organization=acme, code=ANALYTICS, now=now)

        assert (included.enabled, included.upgrade_plan) == (True, None)
        assert (locked.enabled, locked.upgrade_plan.code) == (False, "professional-monthly")
        assert feature_status(organization=acme, code="teleportation", now=now) is None


# --- the usage page -----------------------------------------------------------------------


def busy_month(organization):
    """Calls by two AI employees in two cost centers this usage month."""
    ava = EmployeeFactory(organization=organization, name="Ava", cost_center="Front desk")
    max_ = EmployeeFactory(organization=organization, name="Max", cost_center="Billing desk")
    record_call(employee=ava, seconds=1_800, connected_at=utc(2026, 3, 16, 1))
    record_call(employee=max_, seconds=600, connected_at=utc(2026, 3, 16, 2))


class TestUsagePage:
    def test_without_analytics_the_breakdowns_are_locked_and_name_the_tier(
        self, client, catalog, now
    ):
        acme = subscribed("starter-monthly", now)
        busy_month(acme)

        page = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))

        text = page.content.decode()
        assert "Analytics dashboards is included in the Professional plan and above." in text
        upgrade = reverse(
            "billing:plan_change",
            args=["acme", Plan.objects.get(code="professional-monthly").pk],
        )
        assert f'href="{upgrade}"' in text
        assert f'href="{reverse("billing:plans", args=["acme"])}"' in text
        # The breakdowns are neither shown nor read...
        assert "Call time by AI employee and by cost center, with their charts." in text
        assert "By AI employee" not in text
        assert "Front desk" not in text
        assert page.context["dashboard"].by_employee == []
        # ...while the totals and allowances stay.
        assert "2,400 s" in text
        assert "Allowances" in text

    def test_with_analytics_the_breakdowns_show(self, client, catalog, now):
        acme = subscribed("professional-monthly", now)
        busy_month(acme)

        text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
        text = text.content.decode()

        assert "By AI employee" in text
        assert '<th scope="row">Front desk</th>' in text
        assert '<th scope="row">Billing desk</th>' in text
        assert "Not in your plan" not in text

    def test_a_trial_shows_the_breakdowns_and_says_until_when(self, client, catalog, now):
        acme = subscribed("starter-monthly", now)
        busy_month(acme)
        trial(acme, ANALYTICS, now)

        text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
        text = text.content.decode()

        assert '<th scope="row">Front desk</th>' in text
        assert "Analytics dashboards is on trial until 30 Mar 2026, 10:00" in text
        assert "the Professional plan keeps it" in text

    def test_support_staff_see_the_tier_and_the_plans_but_no_upgrade_button(
        self, client, catalog, now
    ):
        subscribed("starter-monthly", now)
        StaffFactory(username="support")

        text = signed_in(client, "support").get(reverse("usage:dashboard", args=["acme"]))
        text = text.content.decode()

        assert "included in the Professional plan and above" in text
        assert "See the upgrade" not in text
        assert reverse("billing:plans", args=["acme"]) in text

    @pytest.mark.parametrize("plan_code", ["starter-monthly", "professional-monthly"])
    def test_the_page_runs_a_constant_number_of_queries(
        self, client, catalog, now, plan_code, django_assert_max_num_queries
    ):
        acme = subscribed(plan_code, now)
        for n in range(8):
            employee = EmployeeFactory(organization=acme, cost_center=f"Team {n % 3}")
            record_call(employee=employee, seconds=60 + n, connected_at=utc(2026, 3, 16, 1))
        for code in ("audit_log", "workflow_automation"):
            trial(acme, code, now)
        signed_in(client, "admin")

        # session, user, access, organizations, the bell; subscription, counter, counts, by
        # day; the feature (and, when locked, its plan) or the breakdowns
        with django_assert_max_num_queries(11):
            response = client.get(reverse("usage:dashboard", args=["acme"]))

        assert response.status_code == 200


# --- the overview -------------------------------------------------------------------------


def feature_rows(page) -> dict[str, str]:
    """The overview's feature table as a person reads it: feature name → what it says."""
    html = page.content.decode()
    section = html[html.index('id="features-heading"') :]
    rows = re.findall(r'<th scope="row">(.*?) <small.*?</th>\s*<td>(.*?)</td>', section, re.S)
    return {name: " ".join(re.sub(r"<[^>]+>", " ", cell).split()) for name, cell in rows}


class TestOverview:
    def test_admin_sees_the_plans_features_trials_and_where_locked_ones_are(
        self, client, catalog, now
    ):
        acme = subscribed("starter-monthly", now)
        trial(acme, "audit_log", now)

        page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

        rows = feature_rows(page)
        assert rows["Core calling"] == "Included"
        assert rows["Audit log"] == (
            "Trial until 30 Mar 2026, 10:00 Then in the Business plan and above"
        )
        assert rows["Analytics dashboards"] == (
            "Locked In the Professional plan and above · See the upgrade to Professional (Monthly)"
        )
        assert rows["White-labeling"] == (
            "Locked Not in the plans offered to you; ask us about a custom plan"
        )
        professional = Plan.objects.get(code="professional-monthly")
        upgrade = reverse("billing:plan_change", args=["acme", professional.pk])
        assert f'href="{upgrade}"' in page.content.decode()

    def test_member_sees_the_tiers_and_is_told_to_ask_an_admin(self, client, catalog, now):
        subscribed("starter-monthly", now)

        page = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

        assert feature_rows(page)["Analytics dashboards"] == (
            "Locked In the Professional plan and above"
        )
        text = " ".join(page.content.decode().split())
        assert "To unlock a feature, ask" in text
        assert "mailto:admin@example.com" in text

    def test_a_plan_change_shows_at_once(self, client, catalog, now):
        acme = subscribed("starter-monthly", now)
        url = reverse("billing:overview", args=["acme"])
        before = feature_rows(signed_in(client, "admin").get(url))

        lifecycle_services.subscription_plan_change(
            subscription=acme.subscriptions.get(),
            plan=Plan.objects.get(code="professional-monthly"),
            now=now,
        )

        assert before["Analytics dashboards"].startswith("Locked")
        assert feature_rows(client.get(url))["Analytics dashboards"] == "Included"

    def test_the_page_runs_a_constant_number_of_queries(
        self, client, catalog, now, django_assert_max_num_queries
    ):
        acme = subscribed("starter-monthly", now)
        for n in range(10):
            FeatureFactory(code=f"extra_{n}")
        for code in ("audit_log", "workflow_automation", ANALYTICS):
            trial(acme, code, now)
        signed_in(client, "admin")

        # session, user, access, organizations, the bell; subscription, this month's
        # counter, AI employees and numbers; features, plans; the upcoming invoice (coupon,
        # tax rates, balance, pending prorations, number fees), the payment method, the
        # latest invoices, the open alerts, the plans offered, the budgets
        with django_assert_max_num_queries(20):
            response = client.get(reverse("billing:overview", args=["acme"]))

        assert response.status_code == 200
