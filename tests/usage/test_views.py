import datetime as dt
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from billing.catalog import services as catalog_services
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
from tests.helpers import people_of, signed_in, utc
from usage import services
from usage.metering import services as metering
from usage.models import AIEmployee, PhoneNumber

pytestmark = pytest.mark.django_db


def subscribe(organization, plan_code, now):
    """Subscribed on 16 Jan 2026: usage months start on the 16th, the current one on 16 Mar."""
    return SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code=plan_code),
        start=utc(2026, 1, 16),
        now=now,
    )


@pytest.fixture
def acme(now):
    """Acme Dental on Professional monthly (charge plan) with an admin and a member, a rival
    organization with its own admin, and a support person."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    subscribe(organization, "professional-monthly", now)
    people_of(organization)
    return organization


@pytest.fixture
def staff_and_numbers(acme, now):
    """Ava answers +14155550100; Ben is deactivated."""
    PhoneNumberRateFactory()
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    ben = EmployeeFactory(
        organization=acme, name="Ben", is_active=False, deactivated_at=now - dt.timedelta(days=3)
    )
    number = services.phone_number_provision(
        organization=acme, number="+14155550100", number_type="local", country="US", employee=ava
    )
    return SimpleNamespace(ava=ava, ben=ben, number=number)


# --- access -------------------------------------------------------------------------------

PAGES = ["dashboard", "employees", "phone_numbers", "number_release"]
ACTIONS = {
    "employee_create": {"name": "Cleo", "cost_center": "Sales", "inbound_capable": "on"},
    "employee_deactivate": {},
    "employee_reactivate": {},
    "number_provision": {"number": "+14155550111", "number_type": "local", "country": "US"},
    "number_assign": {"employee": ""},
    "number_release": {},
}


def url_of(name, slug, things):
    ids = {
        "employee_deactivate": [things.ava.pk],
        "employee_reactivate": [things.ben.pk],
        "number_assign": [things.number.pk],
        "number_release": [things.number.pk],
    }
    return reverse(f"usage:{name}", args=[slug, *ids.get(name, [])])


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, staff_and_numbers, name):
    url = url_of(name, "acme", staff_and_numbers)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_action(client, staff_and_numbers, name):
    response = client.post(url_of(name, "acme", staff_and_numbers), ACTIONS[name])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 200), ("support", 200)],
)
def test_page_access_matrix(client, staff_and_numbers, name, username, status):
    response = signed_in(client, username).get(url_of(name, "acme", staff_and_numbers))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert b"Ava" not in response.content
        assert b"+14155550100" not in response.content


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 302), ("support", 403)],
)
def test_action_access_matrix(client, staff_and_numbers, name, username, status):
    response = signed_in(client, username).post(
        url_of(name, "acme", staff_and_numbers), ACTIONS[name]
    )

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content


def test_refused_actions_change_nothing(client, staff_and_numbers):
    for username in ("member", "support", "rival_admin"):
        signed_in(client, username)
        for name, data in ACTIONS.items():
            client.post(url_of(name, "acme", staff_and_numbers), data)

    assert AIEmployee.objects.filter(is_active=True).count() == 1  # Ava only
    assert not AIEmployee.objects.filter(name="Cleo").exists()
    assert PhoneNumber.objects.get().released_at is None
    assert PhoneNumber.objects.get().employee == staff_and_numbers.ava


def test_an_admin_of_another_organization_cannot_reach_its_employees_through_their_own(
    client, staff_and_numbers
):
    """Ids of another organization's records are unknown under one's own organization."""
    signed_in(client, "rival_admin")

    deactivate = client.post(url_of("employee_deactivate", "rival", staff_and_numbers))
    release = client.post(url_of("number_release", "rival", staff_and_numbers))

    assert (deactivate.status_code, release.status_code) == (404, 404)
    staff_and_numbers.ava.refresh_from_db()
    assert staff_and_numbers.ava.is_active
    assert PhoneNumber.objects.get().released_at is None


@pytest.mark.parametrize("name", ["employee_deactivate", "number_provision"])
def test_actions_answer_only_posts(client, staff_and_numbers, name):
    response = signed_in(client, "admin").get(url_of(name, "acme", staff_and_numbers))

    assert response.status_code == 405


def test_staff_see_the_lists_without_buttons_that_would_change_them(client, staff_and_numbers):
    signed_in(client, "support")

    employees = client.get(reverse("usage:employees", args=["acme"])).content.decode()
    numbers = client.get(reverse("usage:phone_numbers", args=["acme"])).content.decode()

    assert "Ava" in employees
    assert ">Deactivate</button>" not in employees
    assert "Add an AI employee" not in employees
    assert "+14155550100" in numbers
    assert "Provision a number" not in numbers
    assert "Release…" not in numbers


def test_staff_who_post_anyway_are_told_changes_are_for_administrators(client, staff_and_numbers):
    response = signed_in(client, "support").post(
        url_of("employee_deactivate", "acme", staff_and_numbers)
    )

    assert response.status_code == 403
    assert "Only administrators can make changes" in response.content.decode()


@pytest.mark.parametrize("name", ACTIONS)
def test_action_forms_refuse_posts_without_a_csrf_token(staff_and_numbers, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(url_of(name, "acme", staff_and_numbers), ACTIONS[name])

    assert response.status_code == 403
    assert AIEmployee.objects.filter(is_active=True).count() == 1


def test_the_pages_carry_a_csrf_token_in_every_form(client, staff_and_numbers):
    signed_in(client, "admin")

    for name in ("employees", "phone_numbers", "number_release"):
        page = client.get(url_of(name, "acme", staff_and_numbers)).content.decode()
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")


# --- the usage page -----------------------------------------------------------------------


def test_charge_plan_headline_shows_the_allowance_left_then_the_rate(client, acme, now):
    # 1,766 of Professional's 3,000 minutes used this month, by five AI employees at once
    for seconds in (21_600, 21_600, 21_600, 21_600, 19_560):
        record_call(
            employee=EmployeeFactory(organization=acme),
            seconds=seconds,
            connected_at=utc(2026, 3, 16, 0, 10),
        )
    client = signed_in(client, "admin")

    dashboard = client.get(reverse("usage:dashboard", args=["acme"])).content.decode()
    overview = client.get(reverse("billing:overview", args=["acme"])).content.decode()

    assert "No limit" not in dashboard
    assert "1,234 min left <small>of 3,000 included</small>" in dashboard
    assert "Then $0.004/s." in dashboard
    assert (
        "<dt>Call time this month</dt><dd>1,234 min left of 3,000 included, then $0.004/s</dd>"
        in overview
    )


def test_block_plan_shows_the_seconds_and_minutes_left_and_when_calls_would_pause(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    ava = EmployeeFactory(organization=organization)
    # 1,200 s in the 10 hours since 16 Mar began: the rest of the 18,000 s lasts 140 hours more.
    record_call(employee=ava, seconds=1_200, connected_at=utc(2026, 3, 16, 1))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["tiny"]))
    text = text.content.decode()

    assert "280 min left <small>of 300 included</small>" in text
    assert "Then calls pause until the allowance resets on 16 Apr" in text
    assert "calls pause on <strong>22 Mar, 06:00</strong>" in text
    assert "7% of 18,000 s (300 min)" in text


def test_charge_plan_projects_use_at_the_period_end_and_the_overage_it_would_cost(
    client, acme, now
):
    ava = EmployeeFactory(organization=acme, name="Ava")
    # 3,000 s in the first 10 hours of a 31-day month: 223,200 s by its end at this rate,
    # 43,200 s over the 180,000 s allowance, at $0.004 a second.
    record_call(employee=ava, seconds=3_000, connected_at=utc(2026, 3, 16, 1))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert "223,200 s" in text
    assert "43,200 s (720 min) over the allowance" in text
    assert "<strong>$172.80</strong> in overage" in text


def test_overage_so_far_and_its_cost(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava")
    record_call(employee=ava, seconds=80_000, connected_at=utc(2026, 2, 20, 9))
    record_call(employee=ava, seconds=80_000, connected_at=utc(2026, 2, 25, 9))
    record_call(employee=ava, seconds=30_000, connected_at=utc(2026, 3, 1, 9))

    response = signed_in(client, "admin").get(
        reverse("usage:dashboard", args=["acme"]), {"period": "2026-02-16"}
    )

    text = response.content.decode()
    assert "10,000 s <small>166.7 min</small>" in text  # overage: 190,000 - 180,000
    assert "Costs <strong>$40.00</strong>" in text


def test_an_earlier_period_shows_its_own_numbers(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    record_call(employee=ava, seconds=2_400, connected_at=utc(2026, 2, 20, 9))
    record_call(employee=ava, seconds=600, connected_at=utc(2026, 3, 16, 1))
    signed_in(client, "admin")
    url = reverse("usage:dashboard", args=["acme"])

    current = client.get(url)
    earlier = client.get(url, {"period": "2026-02-16"})

    assert current.context["dashboard"].summary.call_seconds.used == 600
    assert earlier.context["dashboard"].summary.call_seconds.used == 2_400
    earlier_page = earlier.content.decode()
    assert "usage month 16 Feb – 15 Mar 2026" in earlier_page
    assert "2,400 s <small>40 min</small>" in earlier_page
    assert "earlier usage month" in earlier_page
    assert "Call time left" not in earlier_page
    assert f'href="{url}?period=2026-01-16"' in earlier_page
    assert f'href="{url}?period=2026-03-16"' in earlier_page


@pytest.mark.parametrize("period", ["nonsense", "2026-02-17", "2025-01-16", ""])
def test_an_unknown_period_shows_the_current_one(client, acme, period):
    response = signed_in(client, "admin").get(
        reverse("usage:dashboard", args=["acme"]), {"period": period}
    )

    assert response.status_code == 200
    assert response.context["dashboard"].summary.is_current
    assert "usage month 16 Mar – 15 Apr 2026" in response.content.decode()


def test_usage_is_charted_by_day_week_employee_and_cost_center_with_tables(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    max_ = EmployeeFactory(organization=acme, name="Max", cost_center="Billing desk")
    record_call(employee=ava, seconds=1_800, connected_at=utc(2026, 3, 16, 1))
    record_call(employee=max_, seconds=600, connected_at=utc(2026, 3, 16, 2))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert text.count('<svg viewBox="0 0') == 4  # the charts (the meters are SVG too)
    assert "Call time by day, 16 Mar – 15 Apr 2026" in text  # the day chart's title
    assert "16 Mar: 1,800 s (30 min)" not in text  # one bar per day, both calls in it
    assert "16 Mar: 2,400 s (40 min)" in text
    assert "16–22 Mar" in text  # first week
    assert "13–15 Apr" in text  # the short last week of a 31-day month
    assert '<th scope="row">Ava</th>' in text
    assert '<th scope="row">Front desk</th>' in text
    assert "75%" in text  # Ava's and the front desk's share


def test_allowances_are_shown_against_the_plan(client, acme, now):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)
    EmployeeFactory(organization=acme, name="Dan", is_active=False)
    metering.usage_report_record(
        organization=acme,
        kind="storage",
        report_id="s-1",
        quantity=1_342_177_280,  # 1.25 GiB: 1.25 × 2^30 bytes
        measured_at=now,
    )
    metering.usage_report_record(
        organization=acme, kind="api_calls", report_id="a-1", quantity=1_234, measured_at=now
    )

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert "3 of 15 AI employees active" in text
    assert "0 of 10 in use · first 3 free" in text
    assert "1.25 GiB of 50 GiB" in text
    assert " GB" not in text
    assert "1,234 of 100,000 this month" in text


def test_unlimited_plan_says_there_is_no_limit_to_run_out_of(client, now):
    organization = OrganizationFactory(slug="big")
    SubscriptionFactory(
        organization=organization,
        plan=PlanFactory(name="Enterprise", included_call_seconds=None, max_active_employees=None),
        now=now,
    )
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    record_call(
        employee=EmployeeFactory(organization=organization),
        seconds=600,
        connected_at=utc(2026, 3, 16, 1),
    )

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["big"]))
    text = text.content.decode()

    assert "No limit" in text
    assert "This plan includes unlimited call time." in text
    assert "Unlimited call time: no overage." in text
    assert "1 AI employee active (no limit)" in text


def test_organization_without_a_subscription_gets_a_friendly_empty_page(client, now):
    membership = MembershipFactory(organization=OrganizationFactory(slug="new"))
    client.force_login(membership.user)

    response = client.get(reverse("usage:dashboard", args=["new"]))

    assert response.status_code == 200
    assert "No usage to show yet" in response.content.decode()
    assert reverse("billing:plans", args=["new"]) in response.content.decode()


def test_admins_find_the_usage_pages_from_the_tabs_and_the_overview(client, acme):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)

    overview = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    text = overview.content.decode()
    for name in ("dashboard", "employees", "phone_numbers"):
        # the tab, and the overview's usage card
        assert text.count(f'href="{reverse(f"usage:{name}", args=["acme"])}"') == 2
    assert "3 of 15 AI employees active" in text


def test_members_see_no_usage_tabs(client, acme):
    text = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    assert reverse("usage:dashboard", args=["acme"]) not in text.content.decode()


# --- AI employees -------------------------------------------------------------------------


def test_employees_page_lists_everyone_and_how_many_of_the_plan_are_active(client, acme, now):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)
    EmployeeFactory(organization=acme, name="Dan", is_active=False, deactivated_at=now)

    text = signed_in(client, "admin").get(reverse("usage:employees", args=["acme"]))
    text = text.content.decode()

    assert "3 of 15 AI employees active" in text
    for name in ("Ava", "Ben", "Cleo", "Dan"):
        assert name in text
    assert text.count(">Deactivate</button>") == 3
    assert text.count(">Reactivate</button>") == 1


def test_admin_adds_an_ai_employee(client, acme):
    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["acme"]),
        {"name": "Cleo", "cost_center": "Sales"},
        follow=True,
    )

    cleo = AIEmployee.objects.get(name="Cleo")
    assert (cleo.organization, cleo.cost_center, cleo.inbound_capable) == (acme, "Sales", False)
    assert response.redirect_chain == [(reverse("usage:employees", args=["acme"]), 302)]
    assert "Cleo is active." in response.content.decode()
    assert "1 of 15 AI employees active" in response.content.decode()


def test_a_nameless_employee_is_refused_with_the_form_shown_again(client, acme):
    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["acme"]), {"name": "", "cost_center": "Sales"}
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert 'value="Sales"' in response.content.decode()
    assert not AIEmployee.objects.exists()


def test_at_the_quota_a_new_employee_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=organization, name=name)

    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["tiny"]), {"name": "Dan"}
    )

    text = response.content.decode()
    assert response.status_code == 409
    assert "3 of 3 AI employees active: the Starter plan allows 3." in text
    assert f'<a class="way-out" href="{reverse("billing:plans", args=["tiny"])}">Upgrade' in text
    employees_url = reverse("usage:employees", args=["tiny"])
    assert f'<a class="way-out" href="{employees_url}#employee-list">Deactivate' in text
    assert 'value="Dan"' in text  # what was typed is kept
    assert not AIEmployee.objects.filter(name="Dan").exists()


def test_admin_deactivates_and_reactivates_an_employee(client, staff_and_numbers):
    ava = staff_and_numbers.ava
    signed_in(client, "admin")

    deactivated = client.post(url_of("employee_deactivate", "acme", staff_and_numbers), follow=True)
    ava.refresh_from_db()
    assert not ava.is_active
    assert "Ava is deactivated" in deactivated.content.decode()
    assert "0 of 15 AI employees active" in deactivated.content.decode()

    reactivated = client.post(
        reverse("usage:employee_reactivate", args=["acme", ava.pk]), follow=True
    )
    ava.refresh_from_db()
    assert ava.is_active
    assert "Ava is active again." in reactivated.content.decode()


def test_reactivating_at_the_quota_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=organization, name=name)
    dan = EmployeeFactory(organization=organization, name="Dan", is_active=False)

    response = signed_in(client, "admin").post(
        reverse("usage:employee_reactivate", args=["tiny", dan.pk]), follow=True
    )

    text = response.content.decode()
    assert "3 of 3 AI employees active" in text
    assert "Upgrade your plan</a>" in text
    assert "Deactivate an AI employee</a>" in text
    dan.refresh_from_db()
    assert not dan.is_active


# --- phone numbers ------------------------------------------------------------------------


def test_numbers_page_lists_numbers_with_fees_and_who_answers(client, staff_and_numbers):
    text = signed_in(client, "admin").get(reverse("usage:phone_numbers", args=["acme"]))
    text = text.content.decode()

    assert "1 of 10 phone numbers in use · the first 3 are free" in text
    assert "+14155550100" in text
    assert "$1.75" in text  # $1.50 + $0.25 regulatory fee
    assert "Free" in text  # within the plan's free numbers this month
    assert f'<option value="{staff_and_numbers.ava.pk}" selected>Ava</option>' in text


def test_release_warns_that_the_number_cannot_be_reclaimed_nor_the_month_refunded(
    client, staff_and_numbers
):
    signed_in(client, "admin")

    listing = client.get(reverse("usage:phone_numbers", args=["acme"])).content.decode()
    confirmation = client.get(url_of("number_release", "acme", staff_and_numbers))

    assert "Cannot be reclaimed; no refund for the partial month" in listing
    text = confirmation.content.decode()
    assert "A released number cannot be reclaimed." in text
    assert "There is no refund for the partial month" in text
    assert "Release +14155550100 permanently" in text
    assert PhoneNumber.objects.get().released_at is None  # asking changes nothing


def test_admin_releases_a_number_and_it_is_shown_as_released(client, staff_and_numbers, now):
    response = signed_in(client, "admin").post(
        url_of("number_release", "acme", staff_and_numbers), follow=True
    )

    number = PhoneNumber.objects.get()
    assert number.released_at == now
    text = response.content.decode()
    assert "+14155550100 is released" in text
    assert '<span class="pill">Released</span><br><small class="nowrap">16 Mar 2026</small>' in text
    assert "Release…" not in text
    assert "0 of 10 phone numbers in use" in text


def test_a_released_number_cannot_be_provisioned_again(client, staff_and_numbers):
    services.phone_number_release(phone_number=staff_and_numbers.number)

    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {"number": "+14155550100", "number_type": "local", "country": "US"},
    )

    assert response.status_code == 409
    assert "was released by this organization and cannot be provisioned again" in (
        response.content.decode()
    )


def test_admin_provisions_a_number_for_an_employee(client, staff_and_numbers):
    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {
            "number": "+14155550111",
            "number_type": "local",
            "country": "us",
            "region": "CA",
            "vanity": "on",
            "employee": staff_and_numbers.ava.pk,
        },
        follow=True,
    )

    number = PhoneNumber.objects.get(number="+14155550111")
    assert (number.country, number.region, number.is_vanity) == ("US", "CA", True)
    assert number.employee == staff_and_numbers.ava
    assert str(number.monthly_fee) == "$6.75"
    assert "+14155550111 is provisioned at $6.75 a month" in response.content.decode()


def test_a_malformed_number_is_refused_with_the_form_shown_again(client, staff_and_numbers):
    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {"number": "555-0100", "number_type": "local", "country": "USA"},
    )

    text = response.content.decode()
    assert response.status_code == 400
    assert "Enter the number in E.164 form" in text
    assert "Enter a two-letter country code" in text
    assert PhoneNumber.objects.count() == 1


def test_provisioning_beyond_the_plan_limit_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    PhoneNumberRateFactory()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for number in ("+14155550100", "+14155550101"):
        services.phone_number_provision(
            organization=organization, number=number, number_type="local", country="US"
        )

    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["tiny"]),
        {"number": "+14155550102", "number_type": "local", "country": "US"},
    )

    text = response.content.decode()
    assert response.status_code == 409
    assert "2 of 2 phone numbers in use: the Starter plan allows 2." in text
    assert "Release a number</a>" in text
    assert f'href="{reverse("billing:plans", args=["tiny"])}">Upgrade your plan</a>' in text
    assert PhoneNumber.objects.count() == 2


def test_admin_assigns_a_number_to_another_employee_and_unassigns_it(client, staff_and_numbers):
    cleo = EmployeeFactory(organization=staff_and_numbers.ava.organization, name="Cleo")
    signed_in(client, "admin")
    url = url_of("number_assign", "acme", staff_and_numbers)

    assigned = client.post(url, {"employee": cleo.pk}, follow=True)
    assert PhoneNumber.objects.get().employee == cleo
    assert "Calls to +14155550100 now ring Cleo." in assigned.content.decode()

    client.post(url, {"employee": ""})
    assert PhoneNumber.objects.get().employee is None


def test_a_number_cannot_be_assigned_to_another_organizations_employee(client, staff_and_numbers):
    stranger = EmployeeFactory(name="Stranger")

    response = signed_in(client, "admin").post(
        url_of("number_assign", "acme", staff_and_numbers), {"employee": stranger.pk}, follow=True
    )

    assert "Choose an active AI employee that answers calls." in response.content.decode()
    assert PhoneNumber.objects.get().employee == staff_and_numbers.ava


# --- speed --------------------------------------------------------------------------------


# Queries per page, whatever the data: session and user (2), the person's access and
# organizations (2), the bell's unread notices (1), then the page's own reads.
QUERY_BUDGET = {
    "dashboard": 11,  # subscription, counter, counts, by day, by employee, by cost center
    "employees": 7,  # subscription, employees with their numbers
    "phone_numbers": 10,  # subscription, numbers, this month's fees, employees, form choices
    "number_release": 6,  # the number and who answers it
    # subscription, this month's counter, AI employees and numbers, the features and the
    # plans that offer them; the upcoming invoice (coupon, tax rates, balance, pending
    # prorations, number fees), the default payment method, the latest invoices, the open
    # alerts, the plans offered and the budgets
    "overview": 20,
}


@pytest.mark.parametrize(("name", "budget"), QUERY_BUDGET.items())
def test_pages_run_a_constant_number_of_queries(
    client, staff_and_numbers, now, name, budget, django_assert_max_num_queries
):
    acme = staff_and_numbers.ava.organization
    employees = [
        EmployeeFactory(organization=acme, name=f"Agent {n}", cost_center=f"Team {n % 4}")
        for n in range(12)
    ]
    for day in range(20):
        for employee in employees[: 6 + day % 6]:
            record_call(
                employee=employee, seconds=60 + day, connected_at=utc(2026, 2, 16 + day // 2, 9)
            )
    for n in range(8):
        services.phone_number_provision(
            organization=acme,
            number=f"+1415555020{n}",
            number_type="local",
            country="US",
            employee=employees[n],
        )
    url = (
        reverse("billing:overview", args=["acme"])
        if name == "overview"
        else url_of(name, "acme", staff_and_numbers)
    )
    signed_in(client, "admin")

    with django_assert_max_num_queries(budget):
        response = client.get(url, {"period": "2026-02-16"} if name == "dashboard" else {})

    assert response.status_code == 200
