"""The billing overview as the guide's billing page: summary, usage against every allowance,
how the organization pays, the latest invoices, open alerts and the plan options."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.lifecycle import renewals
from billing.models import Membership, Notification, NotificationRead, Organization
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    card,
    record_call,
)
from usage.budgets.services import budget_set

pytestmark = pytest.mark.django_db

DECEMBER = dt.datetime(2025, 12, 16, tzinfo=dt.UTC)


@pytest.fixture
def acme(now):
    """Acme Dental on Professional since 16 Dec 2025, renewed on 16 Jan, Feb and Mar: four
    invoices. Business is offered monthly, Annual Pro yearly. An admin and a member."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    professional = PlanFactory(name="Professional")
    PlanFactory(name="Business", price=professional.price * 4)
    PlanFactory(name="Annual Pro", interval="year", price=professional.price * 10)
    subscription = SubscriptionFactory(
        organization=organization, plan=professional, start=DECEMBER, now=DECEMBER
    )
    renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    return organization


def alert(organization, key, title, at, kind=Notification.Kind.USAGE_ALERT):
    return Notification.objects.create(
        organization=organization, kind=kind, dedup_key=key, title=title, created_at=at
    )


def overview(client, username, organization):
    client.force_login(UserFactory._meta.model.objects.get(username=username))
    response = client.get(reverse("billing:overview", args=[organization.slug]))
    assert response.status_code == 200
    return response


class TestAdminsSeeTheBillingPage:
    def test_usage_against_every_allowance(self, client, acme):
        page = overview(client, "admin", acme).content.decode()

        for allowance in ("Call time", "AI employees", "Phone numbers", "Storage", "API calls"):
            assert f"<strong>{allowance}</strong>" in page
        assert "0 of 15 AI employees active" in page

    def test_the_three_latest_invoices_each_linking_to_its_page(self, client, acme):
        # Given four invoices: the first, and the renewals of January, February and March
        numbers = list(acme.invoices.order_by("-issued_at", "-pk").values_list("number", flat=True))
        assert len(numbers) == 4

        response = overview(client, "admin", acme)

        shown = [row.invoice.number for row in response.context["page"].latest_invoices]
        assert shown == numbers[:3]
        page = response.content.decode()
        for number in numbers[:3]:
            assert reverse("billing:invoice", args=[acme.slug, number]) in page
        assert reverse("billing:invoice", args=[acme.slug, numbers[3]]) not in page

    def test_the_default_card(self, client, acme, now):
        card(acme, make_default=True, expiry=(12, 2030), now=now)

        page = overview(client, "admin", acme).content.decode()

        assert "Charged to <strong>Visa •••• 4242</strong>" in page

    def test_without_a_default_method_it_says_to_add_one(self, client, acme):
        page = overview(client, "admin", acme).content.decode()

        assert "No default payment method" in page

    def test_organizations_paying_by_invoice_see_their_transfer_terms(self, client, acme):
        acme.payment_terms = Organization.PaymentTerms.INVOICE
        acme.net_days = 30
        acme.save()

        page = overview(client, "admin", acme).content.decode()

        assert "By bank transfer: each invoice is due 30 days after it is issued." in page

    def test_open_alerts_are_this_month_unread_ones(self, client, acme, now):
        # Given an alert read by the admin, one unread, one of last month, and an invoice notice
        admin = UserFactory._meta.model.objects.get(username="admin")
        read = alert(acme, "a", "80% of call time used", now - dt.timedelta(hours=2))
        NotificationRead.objects.create(notification=read, user=admin, read_at=now)
        alert(acme, "b", "Projected overage $12.00", now - dt.timedelta(hours=1))
        alert(acme, "c", "Last month's alert", now - dt.timedelta(days=20))
        alert(acme, "d", "Invoice issued", now, kind=Notification.Kind.INVOICE_ISSUED)

        response = overview(client, "admin", acme)

        assert [notice.title for notice in response.context["page"].alerts] == [
            "Projected overage $12.00"
        ]

    def test_plan_options_on_the_same_interval_link_to_their_change_page(self, client, acme):
        response = overview(client, "admin", acme)

        options = response.context["page"].plan_options
        assert [plan.name for plan in options] == ["Business"]
        assert reverse("billing:plan_change", args=[acme.slug, options[0].pk]) in (
            response.content.decode()
        )


class TestMembers:
    def test_see_only_the_plan_and_status(self, client, acme, now):
        card(acme, make_default=True, expiry=(12, 2030), now=now)
        alert(acme, "b", "Projected overage $12.00", now)

        response = overview(client, "member", acme)

        page = response.content.decode()
        assert "Professional" in page
        for private in ("Visa", "Latest invoices", "Upcoming invoice", "Projected overage", "$199"):
            assert private not in page
        assert response.context["page"].latest_invoices == []


class TestBudgetsPanel:
    @pytest.fixture
    def practice(self, now):
        """$100 a month, every second of calls charged at $0.004: by the 16th at 10:00,
        15,000 s made by Sales, so $160 spent: the fee and $60 of overage."""
        subscription = SubscriptionFactory(
            plan=PlanFactory(price=Money(100, "USD"), included_call_seconds=0),
            start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            now=now,
        )
        organization = subscription.organization
        sales = EmployeeFactory(organization=organization, cost_center="Sales")
        EmployeeFactory(organization=organization, cost_center="Support")
        record_call(employee=sales, seconds=15_000, connected_at=now - dt.timedelta(hours=5))
        MembershipFactory(organization=organization, user=UserFactory(username="admin"))
        return organization

    def test_without_a_budget_it_invites_to_set_one(self, client, practice):
        page = overview(client, "admin", practice).content.decode()

        assert "No budget set." in page
        assert reverse("usage:budgets", args=[practice.slug]) in page

    def test_each_budget_shows_spend_budget_forecast_and_whether_it_is_over(self, client, practice):
        # Given a $200 budget for the organization and $40 for Sales
        budget_set(organization=practice, amount=Decimal("200"))
        budget_set(organization=practice, amount=Decimal("40"), cost_center="Sales")

        response = overview(client, "admin", practice)

        # Then each shows its spend against it, its forecast, and where it goes over
        glance = response.context["page"].budgets
        organization_row, sales_row = glance.budgets
        page = response.content.decode()
        assert "$160.00 / $200.00 (80%)" in page
        assert '$60.00 / $40.00 (150%) <span class="pill pill-bad">Over</span>' in page
        assert organization_row.forecast_exceeds and sales_row.forecast_exceeds
        assert f'{organization_row.forecast} <span class="pill pill-bad">Over budget</span>' in (
            page
        )
        assert "16 days left" in page
        assert reverse("usage:budgets", args=[practice.slug]) in page

    def test_budgets_add_the_same_few_queries_however_many(self, client, practice):
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))
        url = reverse("billing:overview", args=[practice.slug])

        def queries():
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            return len(captured)

        without = queries()
        budget_set(organization=practice, amount=Decimal("200"))
        one = queries()
        budget_set(organization=practice, amount=Decimal("40"), cost_center="Sales")
        budget_set(organization=practice, amount=Decimal("40"), cost_center="Support")
        three = queries()

        # Beyond reading the budgets (one query, with or without any): the month's counter,
        # number fees, coupon, tax rates, balance, the week's pattern and the month's days;
        # with cost-center budgets, their seconds too, in one query for them all
        assert (one - without, three - without) == (7, 8)
