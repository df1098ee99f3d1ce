import datetime as dt

import pytest
from django.urls import reverse

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
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def acme(now):
    """Acme Dental on Professional since 1 Mar, 100,000 s used by the 16th (10:00), with an
    admin and a member; a rival organization with its own admin; support staff."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    SubscriptionFactory(organization=organization, plan=PlanFactory(), start=MARCH, now=MARCH)
    employee = EmployeeFactory(organization=organization, created_at=MARCH)
    for n in range(5):
        record_call(employee=employee, seconds=20_000, connected_at=MARCH + dt.timedelta(days=n))
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    rival = OrganizationFactory(name="Rival Corp", slug="rival")
    MembershipFactory(organization=rival, user=UserFactory(username="rival_admin"))
    StaffFactory(username="support")
    return organization


def upcoming_url(organization):
    return reverse("usage:upcoming", args=[organization.slug])


class TestUpcomingInvoicePage:
    def test_an_admin_sees_the_next_invoice_so_far_and_projected(self, client, acme):
        # Given 100,000 s of 180,000 s used in 15 days 10 hours of March's 31 days
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        # When the admin opens the upcoming invoice
        response = client.get(upcoming_url(acme))

        # Then April's fee is due so far; at this pace March ends 21,081 s over: $84.32
        assert response.status_code == 200
        page = response.content.decode()
        assert "Subscription invoice for 1 Apr – 30 Apr 2026" in page
        assert "Issued on 1 Apr 2026" in page
        rows = [(row.kind, row.so_far, row.projected) for row in response.context["upcoming"].rows]
        assert rows[0][0] == "subscription" and rows[1][0] == "overage_calls"
        assert (rows[1][1], str(rows[1][2])) == (None, "$84.32")
        assert "$283.32" in page
        assert "100,000 s so far of 180,000 s included" in page

    @pytest.mark.parametrize(
        ("username", "status"),
        [("member", 403), ("rival_admin", 404), ("support", 200)],
    )
    def test_who_may_see_it(self, client, acme, username, status):
        sign_in(client, UserFactory._meta.model.objects.get(username=username))

        response = client.get(upcoming_url(acme))

        assert response.status_code == status
        assert ("$199.00" in response.content.decode()) is (status == 200)

    def test_anonymous_people_are_sent_to_sign_in(self, client, acme):
        response = client.get(upcoming_url(acme))

        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_without_a_subscription_the_page_says_so(self, client, now):
        organization = OrganizationFactory()
        MembershipFactory(organization=organization, user=UserFactory(username="admin"))
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        response = client.get(upcoming_url(organization))

        assert "No upcoming invoice" in response.content.decode()

    def test_only_get(self, client, acme):
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        assert client.post(upcoming_url(acme)).status_code == 405


class TestOverviewPanel:
    def test_the_overview_shows_the_upcoming_invoice_to_admins(self, client, acme):
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        page = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

        assert 'aria-label="Upcoming invoice"' in page
        assert upcoming_url(acme) in page

    def test_members_see_no_upcoming_invoice(self, client, acme):
        client.force_login(UserFactory._meta.model.objects.get(username="member"))

        page = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

        assert "Upcoming invoice" not in page and "$199.00" not in page


class TestUpcomingInvoiceApi:
    @pytest.fixture
    def get(self, client):
        token = service_token_create(name="platform", all_organizations=True)[1]
        return lambda path: client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    def test_the_next_invoice_line_by_line(self, get, acme):
        response = get("orgs/acme/upcoming-invoice")

        assert response.status_code == 200
        body = response.json()
        assert (body["kind"], body["currency"], body["issued_at"]) == (
            "subscription",
            "USD",
            "2026-04-01T00:00:00Z",
        )
        assert [(line["kind"], line["so_far"]) for line in body["lines"]] == [
            ("subscription", "199.00"),
            ("overage_calls", None),
        ]
        assert body["so_far"]["total"] == "199.00"
        # 100,000 s in 15 days 10 hours of 31 days: 201,081 s projected, 21,081 s over
        assert body["lines"][1]["projected"] == "84.32"
        assert body["projected"]["total"] == "283.32"

    def test_an_unknown_organization_is_404_naming_it(self, get, acme):
        response = get("orgs/nowhere/upcoming-invoice")

        assert response.status_code == 404
        assert response.json()["code"] == "organization_not_found"
        assert "'nowhere'" in response.json()["detail"]

    def test_without_a_subscription_it_is_409_no_subscription(self, get, now):
        OrganizationFactory(slug="empty")

        response = get("orgs/empty/upcoming-invoice")

        assert (response.status_code, response.json()["code"]) == (409, "no_subscription")

    def test_it_is_in_the_openapi_document_with_its_errors(self, get, acme):
        spec = get("openapi.json").json()

        answers = spec["paths"]["/api/v1/orgs/{org}/upcoming-invoice"]["get"]["responses"]
        assert {"200", "401", "403", "404", "409", "422"} <= set(answers)
        assert "`no_subscription`" in answers["409"]["description"]
        assert "`organization_not_found`" in answers["404"]["description"]
