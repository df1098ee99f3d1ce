"""The plans page costs the organization's last three closed usage months on every plan and
recommends an upgrade or a downgrade when the guide (page 5) would."""

import datetime as dt
import re

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.lifecycle import renewals
from billing.models import Plan
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from usage import services as usage_services
from usage.metering import services as metering
from usage.models import UsageReport

pytestmark = pytest.mark.django_db

GIB = 1024**3
MAR_16 = dt.datetime(2026, 3, 16, tzinfo=dt.UTC)  # the frozen `now` is 10:00 that day
SIX_HOURS = 6 * 3600


@pytest.fixture(autouse=True)
def catalog(now):
    catalog_services.catalog_load()


def organization_with(
    plan_code, calls, *, storage_gb=0, api_calls=0, employees=1, numbers=0, slug="acme"
):
    """An organization on a catalog plan whose usage months closed with `calls` seconds each
    (oldest first, the last one ending on 16 Mar), storage peaking at `storage_gb` and
    `api_calls` API calls every month; it has `employees` active AI employees and holds
    `numbers` phone numbers now."""
    start = MAR_16 - relativedelta(months=len(calls))
    organization = OrganizationFactory(name="Acme Dental", slug=slug)
    SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code=plan_code),
        start=start,
        now=start,
    )
    MembershipFactory(organization=organization, user=UserFactory(username=f"{slug}-admin"))
    staff = [
        EmployeeFactory(organization=organization, name=f"Agent {n}", created_at=start)
        for n in range(employees)
    ]
    for month, seconds in enumerate(calls):
        month_start = start + relativedelta(months=month)
        for n, offset in enumerate(range(0, seconds, SIX_HOURS)):
            record_call(
                employee=staff[0],
                seconds=min(SIX_HOURS, seconds - offset),
                connected_at=month_start + dt.timedelta(days=1, hours=n * 7),
            )
        measured_at = month_start + dt.timedelta(days=2)
        for kind, quantity in (
            (UsageReport.Kind.STORAGE, int(storage_gb * GIB)),
            (UsageReport.Kind.API_CALLS, api_calls),
        ):
            if quantity:
                metering.usage_report_record(
                    organization=organization,
                    kind=kind,
                    report_id=f"{kind}-{month}",
                    quantity=quantity,
                    measured_at=measured_at,
                    now=measured_at,
                )
        renewals.renew_subscriptions_if_needed(now=month_start + relativedelta(months=1))
    PhoneNumberRateFactory()  # $1.75 a month: $1.50 and a $0.25 regulatory fee
    for n in range(numbers):
        usage_services.phone_number_provision(
            organization=organization,
            number=f"+1415555{organization.pk % 100:02d}{n:02d}",
            number_type="local",
            country="US",
            employee=staff[0],
        )
    return organization


def plans_page(client, organization, **params):
    client.force_login(UserFactory(username=f"{organization.slug}-admin"))
    return client.get(reverse("billing:plans", args=[organization.slug]), params)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def advice(page) -> str:
    """The recommendation above the table, as read."""
    html = page.content.decode()
    return text_of(re.search(r'<section class="card plan-fit".*?</section>', html, re.S)[0])


def compare_rows(page) -> dict[str, list[str]]:
    """The comparison table as read: row heading → one cell per plan offered, left to right
    (the Enterprise column, priced on request, apart)."""
    html = page.content.decode()
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html[html.index('<table class="compare">') :], re.S):
        heading = re.search(r'<th scope="row">(.*?)(?:<small.*?)?</th>', row, re.S)
        if heading:
            cells = re.findall(r'<td(?![^>]*"[^"]*enterprise)[^>]*>(.*?)</td>', row, re.S)
            rows[text_of(heading[1])] = [text_of(cell) for cell in cells]
    return rows


# Plans left to right on the monthly tab: Starter, Professional, Business.


class TestUpgrade:
    def test_starter_near_its_allowance_is_told_it_fits_when_professional_costs_more(self, client):
        # Given Starter ($49, 18,000 s, blocks) used 17,000 s in each of three months
        acme = organization_with("starter-monthly", [17_000, 17_000, 17_000])

        page = plans_page(client, acme)

        # Then 94% of the call time is "near the limit", but Professional is $199.00
        assert advice(page).startswith(
            "Your plan fits You used 90% or more of your call time allowance, but no higher "
            "plan would have cost less than Starter's $49.00 a month on the same usage."
        )
        rows = compare_rows(page)
        assert rows["Average a month"] == ["$49.00", "$199.00", "$799.00"]
        assert rows["Against your plan"] == [
            "Your plan",
            "$150.00 more a month",
            "$750.00 more a month",
        ]
        assert rows["Call overage"] == ["$0.00", "$0.00", "$0.00"]
        assert "refused" not in advice(page)

    def test_starter_says_how_much_went_past_its_allowance(self, client):
        # Given calls that started within the allowance ran 2,000 s past it every month
        acme = organization_with("starter-monthly", [20_000, 20_000, 20_000])

        page = plans_page(client, acme)

        # Then Starter charged nothing for it, refused calls after it, and still fits on cost
        assert "On Starter, 6,000 s (100 min) of calls went past the allowance: not charged" in (
            advice(page)
        )
        assert advice(page).startswith("Your plan fits")
        assert compare_rows(page)["Call overage"][0] == (
            "$0.00 6,000 s (100 min) went past the limit: not charged, calls refused"
        )

    def test_professional_paying_more_in_overage_than_business_costs_is_told_to_upgrade(
        self, client
    ):
        # Given Professional ($199, 180,000 s, $0.004/s) used 350,000 s a month:
        # 170,000 s over, $680.00 of overage a month
        acme = organization_with("professional-monthly", [350_000, 350_000, 350_000])

        page = plans_page(client, acme)

        assert advice(page).startswith(
            "Upgrade to Business: you'd pay $799.00 instead of $879.00 a month"
        )
        rows = compare_rows(page)
        assert rows["Call overage"] == [
            "$0.00 996,000 s (16,600 min) would have been refused",
            "$2,040.00",
            "$0.00",
        ]
        assert rows["Total, 3 months"] == ["$147.00", "$2,637.00", "$2,397.00"]
        assert rows["Against your plan"][2] == "$80.00 less a month"
        business = Plan.objects.get(code="business-monthly")
        assert reverse("billing:plan_change", args=["acme", business.pk]) in page.content.decode()

    def test_no_upgrade_while_the_overage_keeps_professional_cheaper(self, client):
        # 300,000 s: $480.00 of overage a month, $679.00 in all, less than Business's $799.00
        acme = organization_with("professional-monthly", [300_000, 300_000, 300_000])

        page = plans_page(client, acme)

        assert advice(page).startswith("Your plan fits You used 90% or more of your call time")
        assert compare_rows(page)["Average a month"] == [
            "$49.00 usage beyond its allowances",
            "$679.00 usage beyond its allowances",  # the overage
            "$799.00",
        ]


class TestDowngrade:
    def test_business_using_five_percent_is_told_to_downgrade_to_professional(self, client):
        # Given Business used about 5% of every allowance: 60,000 of 1,200,000 s, 2 of 50
        # AI employees, 1 of 25 numbers, 12 of 250 GiB, 50,000 of 1,000,000 API calls
        acme = organization_with(
            "business-monthly",
            [60_000, 60_000, 60_000],
            storage_gb=12,
            api_calls=50_000,
            employees=2,
            numbers=1,
        )

        page = plans_page(client, acme)

        # Then Professional would have held it all (Starter's 18,000 s would not)
        assert advice(page).startswith("Downgrade to Professional, save $600.00 a month")
        rows = compare_rows(page)
        assert rows["Average a month"] == [
            "$52.50 usage beyond its allowances",  # with 7 GiB of storage overage at $0.50
            "$199.00",
            "$799.00",
        ]
        assert rows["Against your plan"] == [
            "$746.50 less a month",
            "$600.00 less a month",
            "Your plan",
        ]
        professional = Plan.objects.get(code="professional-monthly")
        assert reverse("billing:plan_change", args=["acme", professional.pk]) in (
            page.content.decode()
        )

    def test_no_downgrade_when_one_allowance_is_half_used(self, client):
        # 60,000 s is 5%, but 25 of Business's 50 AI employees are active
        acme = organization_with("business-monthly", [60_000, 60_000, 60_000], employees=25)

        assert advice(plans_page(client, acme)).startswith("Your plan fits From your last")

    def test_no_downgrade_to_a_plan_too_small_for_the_usage(self, client):
        # Professional at 11% of its call time; Starter's 18,000 s would not have held 20,000 s
        acme = organization_with("professional-monthly", [20_000, 20_000, 20_000])

        page = plans_page(client, acme)

        assert advice(page).startswith("Your plan fits From your last")
        assert compare_rows(page)["Call overage"][0] == (
            "$0.00 6,000 s (100 min) would have been refused"
        )


class TestCosts:
    def test_storage_beyond_the_plan_and_numbers_beyond_the_free_ones_are_costed(self, client):
        # Given Starter with a 6 GiB storage peak (1 GiB over at $0.50) and 2 numbers at $1.75
        # (the first free), over 10,000 s of calls a month
        acme = organization_with(
            "starter-monthly", [10_000, 10_000, 10_000], storage_gb=6, numbers=2
        )

        rows = compare_rows(plans_page(client, acme))

        assert rows["Storage overage"] == ["$1.50", "$0.00", "$0.00"]
        assert rows["Phone numbers"] == ["$5.25", "$0.00", "$0.00"]  # three months of one
        assert rows["Total, 3 months"] == ["$153.75", "$597.00", "$2,397.00"]
        assert rows["Average a month"] == [
            "$51.25 usage beyond its allowances",  # its 5 GiB did not hold the storage
            "$199.00",
            "$799.00",
        ]
        assert rows["Against your plan"][1] == "$147.75 more a month"

    def test_only_the_last_three_closed_months_count(self, client):
        # The oldest of four months had 1,000,000 s: far past Professional's allowance
        acme = organization_with("professional-monthly", [1_000_000, 1_000, 1_000, 1_000])

        page = plans_page(client, acme)

        assert compare_rows(page)["Call overage"][1] == "$0.00"
        assert "From your last 3 closed usage months (16 Dec 2025 – 15 Jan 2026; " in advice(page)
        assert "16 Nov" not in advice(page)

    def test_with_one_closed_month_that_month_is_compared(self, client):
        acme = organization_with("starter-monthly", [1_000])

        page = plans_page(client, acme)

        assert "From your last closed usage month (16 Feb – 15 Mar 2026)" in advice(page)
        assert compare_rows(page)["Total, 1 month"] == ["$49.00", "$199.00", "$799.00"]

    def test_annual_plans_are_costed_at_their_monthly_equivalent(self, client):
        acme = organization_with("business-monthly", [60_000, 60_000, 60_000])

        page = plans_page(client, acme, interval="year")

        # 15% off twelve monthly payments: Professional $2,029.80 a year, $169.15 a month
        assert compare_rows(page)["Average a month"][1] == "$169.15"
        assert advice(page).startswith("Downgrade to Professional, save $629.85 a month")

    def test_no_closed_month_yet_says_so_and_recommends_nothing(self, client):
        acme = organization_with("starter-monthly", [])

        page = plans_page(client, acme)

        assert advice(page).startswith("No usage month to compare yet")
        assert "Average a month" not in compare_rows(page)

    @pytest.mark.parametrize("months", [1, 3, 5])
    def test_the_page_runs_a_constant_number_of_queries(
        self, client, months, django_assert_max_num_queries
    ):
        organization_with(
            "professional-monthly", [200_000] * months, storage_gb=60, employees=4, numbers=6
        )
        for n in range(6):
            PlanFactory(code=f"extra-{n}", name=f"Extra {n}")
        client.force_login(UserFactory(username="acme-admin"))

        # session, user, access, organizations, the bell's unread notices; plans, their
        # features, features; usage months, numbers held
        with django_assert_max_num_queries(10):
            response = client.get(reverse("billing:plans", args=["acme"]))

        assert response.status_code == 200
