import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from billing.lifecycle import renewals
from billing.models import Membership
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
    sign_in,
)
from usage.models import CostAllocationRule
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db

FEBRUARY = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def acme(now):
    """Acme Dental on Professional since 1 Feb: February invoiced on 1 Mar, with Ava (Sales)
    calling 150,000 s and Ben (Support) 50,000 s. An admin, a member, a rival admin, staff."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    subscription = SubscriptionFactory(
        organization=organization,
        plan=PlanFactory(free_phone_numbers=0),
        start=FEBRUARY,
        now=FEBRUARY,
    )
    for name, team, seconds in (("Ava", "Sales", 150_000), ("Ben", "Support", 50_000)):
        employee = EmployeeFactory(
            organization=organization, name=name, cost_center=team, created_at=FEBRUARY
        )
        for n, offset in enumerate(range(0, seconds, 6 * 3600)):
            record_call(
                employee=employee,
                seconds=min(6 * 3600, seconds - offset),
                connected_at=FEBRUARY + dt.timedelta(days=1, minutes=n),
            )
    renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=MARCH)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    rival = OrganizationFactory(name="Rival Corp", slug="rival")
    MembershipFactory(organization=rival, user=UserFactory(username="rival_admin"))
    StaffFactory(username="support")
    return organization


def as_user(client, username):
    sign_in(client, UserFactory._meta.model.objects.get(username=username))
    return client


def costs_url(organization, name="costs"):
    return reverse(f"usage:{name}", args=[organization.slug])


class TestCostsPage:
    def test_an_admin_sees_february_split_in_money(self, client, acme):
        response = as_user(client, "admin").get(costs_url(acme), {"month": "2026-02"})

        assert response.status_code == 200
        page = response.content.decode()
        assert "February 2026" in page
        # $199 (March, by seconds) + 20,000 s over at $0.004: Ava 3/4, Ben 1/4
        assert "$209.25" in page and "$69.75" in page and "$279.00" in page
        assert f"{costs_url(acme, 'costs_csv')}?month=2026-02" in page

    def test_by_default_the_latest_invoiced_month(self, client, acme):
        response = as_user(client, "admin").get(costs_url(acme))

        assert response.context["costs"].month == dt.date(2026, 2, 1)

    @pytest.mark.parametrize("month", ["2026-13", "March", "2026-3", "2026-02-01"])
    def test_a_bad_month_is_400_naming_the_field(self, client, acme, month):
        response = as_user(client, "admin").get(costs_url(acme), {"month": month})

        assert response.status_code == 400
        assert "month: " in response.content.decode()
        assert "YYYY-MM" in response.content.decode()

    def test_a_month_not_invoiced_yet_says_so(self, client, acme):
        response = as_user(client, "admin").get(costs_url(acme), {"month": "2026-03"})

        assert "has not been invoiced yet" in response.content.decode()

    @pytest.mark.parametrize(("username", "status"), [("member", 403), ("rival_admin", 404)])
    def test_others_see_nothing(self, client, acme, username, status):
        response = as_user(client, username).get(costs_url(acme))

        assert response.status_code == status
        assert "$209.25" not in response.content.decode()


class TestCsv:
    def test_one_row_per_share_adding_up_to_the_invoice(self, client, acme):
        response = as_user(client, "admin").get(costs_url(acme, "costs_csv"), {"month": "2026-02"})

        assert response["Content-Disposition"] == 'attachment; filename="acme-costs-2026-02.csv"'
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [(row["cost_center"], row["ai_employee"], row["total"]) for row in rows] == [
            ("Sales", "Ava", "209.25"),
            ("Support", "Ben", "69.75"),
        ]
        assert {row["invoice"] for row in rows} == {acme.invoices.latest("issued_at").number}

    def test_a_bad_month_is_400_naming_the_field(self, client, acme):
        response = as_user(client, "admin").get(costs_url(acme, "costs_csv"), {"month": "2026-00"})

        assert response.status_code == 400
        assert response.content.decode().startswith("month: ")


class TestTheRuleForm:
    def test_an_admin_gives_the_fee_to_one_cost_center(self, client, acme):
        response = as_user(client, "admin").post(
            costs_url(acme, "cost_rule"), {"fixed_fee": "cost_center", "cost_center": "Platform"}
        )

        assert response.status_code == 302
        rule = CostAllocationRule.objects.get(organization=acme)
        assert (rule.fixed_fee, rule.cost_center, rule.changed_by.username) == (
            "cost_center",
            "Platform",
            "admin",
        )

    def test_without_the_cost_center_it_names_the_field_and_saves_nothing(self, client, acme):
        response = as_user(client, "admin").post(
            costs_url(acme, "cost_rule"), {"fixed_fee": "cost_center", "cost_center": " "}
        )

        assert response.status_code == 400
        assert response.context["rule_form"].errors == {
            "cost_center": ["Name the cost center that receives the whole fee."]
        }
        assert not CostAllocationRule.objects.exists()

    def test_an_unknown_rule_names_the_field(self, client, acme):
        response = as_user(client, "admin").post(costs_url(acme, "cost_rule"), {"fixed_fee": "x"})

        assert response.status_code == 400
        assert "fixed_fee" in response.context["rule_form"].errors

    def test_support_staff_may_look_but_not_change(self, client, acme):
        as_user(client, "support")

        assert client.get(costs_url(acme)).status_code == 200
        response = client.post(costs_url(acme, "cost_rule"), {"fixed_fee": "equally"})
        assert response.status_code == 403
        assert not CostAllocationRule.objects.exists()


class TestCostsApi:
    @pytest.fixture
    def get(self, client):
        token = service_token_create(name="platform", all_organizations=True)[1]
        return lambda path: client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    def test_the_split_of_a_month(self, get, acme):
        body = get("orgs/acme/costs?month=2026-02").json()

        assert (body["month"], body["invoiced"], body["invoice_total"]) == (
            "2026-02",
            True,
            "279.00",
        )
        assert [(s["cost_center"], s["ai_employee"], s["total"]) for s in body["shares"]] == [
            ("Sales", "Ava", "209.25"),
            ("Support", "Ben", "69.75"),
        ]

    def test_a_month_not_invoiced(self, get, acme):
        body = get("orgs/acme/costs?month=2025-07").json()

        assert (body["invoiced"], body["shares"]) == (False, [])

    @pytest.mark.parametrize("query", ["?month=2026-13", "?month=26-02", ""])
    def test_a_bad_or_missing_month_is_422_naming_it(self, get, acme, query):
        response = get(f"orgs/acme/costs{query}")

        assert response.status_code == 422
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["query", "month"]

    def test_it_is_in_the_openapi_document(self, get, acme):
        answers = get("openapi.json").json()["paths"]["/api/v1/orgs/{org}/costs"]["get"]
        assert {"200", "404", "422"} <= set(answers["responses"])


@pytest.mark.parametrize("name", ["costs", "costs_csv", "costs_history", "upcoming"])
@pytest.mark.parametrize(
    ("username", "status"), [("member", 403), ("rival_admin", 404), ("support", 200)]
)
def test_who_may_see_each_cost_page(client, acme, name, username, status):
    response = as_user(client, username).get(costs_url(acme, name), {"month": "2026-02"})

    assert response.status_code == status


@pytest.mark.parametrize("name", ["costs", "costs_csv", "costs_history", "upcoming"])
def test_anonymous_people_are_sent_to_sign_in(client, acme, name):
    response = client.get(costs_url(acme, name))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_costs_page_runs_a_constant_number_of_queries(
    client, acme, django_assert_max_num_queries
):
    for n in range(30):
        EmployeeFactory(organization=acme, name=f"Extra {n}", cost_center=f"Team {n}")
    renewals.subscription_renew_if_needed(
        subscription_id=acme.subscriptions.get().pk, now=dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    )
    as_user(client, "admin")

    # session, user, access, organizations, the bell; the rule, the months, the shares
    with django_assert_max_num_queries(8):
        response = client.get(costs_url(acme), {"month": "2026-03"})

    assert len(response.context["costs"].shares) == 32
