import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.admin.base import BoundedCountPaginator
from tests.factories import (
    EmployeeFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)
from usage import services
from usage.budgets.services import budgets_replace
from usage.caps.services import spend_caps_replace
from usage.metering import services as metering
from usage.models import AIEmployee, Call, PhoneNumber, ServiceToken, UsageReport
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db

MARCH_1 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def subscription(now):
    """Subscribed on 1 Mar 2026; it is 16 Mar 2026, 10:00 UTC."""
    return SubscriptionFactory(start=MARCH_1, now=now)


def record_calls(employees, count, *, first_id=0):
    """`count` two-minute calls, an hour apart, shared out over `employees`."""
    reports = [
        metering.CallReport(
            call_id=f"call-{n}",
            organization=employees[n % len(employees)].organization.slug,
            employee_id=employees[n % len(employees)].pk,
            direction="outbound" if n % 3 else "inbound",
            connected_at=MARCH_1 + dt.timedelta(hours=n // len(employees)),
            ended_at=MARCH_1 + dt.timedelta(hours=n // len(employees), minutes=2),
        )
        for n in range(first_id, first_id + count)
    ]
    for offset in range(0, count, 1_000):
        metering.calls_record(reports=reports[offset : offset + 1_000])


@pytest.fixture
def many_rows(subscription, now):
    """Rows in every usage table, across several organizations."""
    PhoneNumberRateFactory()
    employees = []
    others = [SubscriptionFactory(start=MARCH_1, now=now) for _ in range(4)]
    for n, sub in enumerate([subscription, *others]):
        organization = sub.organization
        employees += [
            EmployeeFactory(organization=organization, cost_center=center)
            for center in ("Sales", "Support", "Scheduling")
        ]
        services.phone_number_provision(
            organization=organization,
            number=f"+1212555{n:04d}",
            number_type="local",
            country="US",
            employee=employees[-1],
        )
        for day in range(3):
            metering.usage_report_record(
                organization=organization,
                kind=UsageReport.Kind.API_CALLS,
                report_id=f"api-{day}",
                quantity=1_000,
                measured_at=now - dt.timedelta(days=day),
            )
    record_calls(employees, 150)
    for n in range(5):
        service_token_create(name=f"platform {n}", all_organizations=True)
    for employee in employees[::3]:
        spend_caps_replace(
            organization=employee.organization,
            overage_spend=Decimal("25"),
            employees={employee.pk: 3_600},
            cost_centers={"Support": 7_200},
            now=now,
        )
        budgets_replace(
            organization=employee.organization,
            amount=Decimal("500"),
            cost_centers={"Support": Decimal("50")},
            now=now,
        )
    return employees


@pytest.mark.parametrize(
    "model",
    [
        "aiemployee",
        "phonenumber",
        "phonenumberrate",
        "call",
        "usagecounter",
        "usagereport",
        "servicetoken",
        "spendcap",
        "spendcapchange",
        "budgetchange",
    ],
)
def test_every_usage_changelist_runs_a_constant_number_of_queries(
    staff_client, many_rows, model, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse(f"admin:usage_{model}_changelist"))

    assert response.status_code == 200


class TestCallList:
    @pytest.mark.parametrize("narrowed_by", ["nothing", "direction", "organization", "search"])
    def test_never_counts_all_rows(self, staff_client, many_rows, subscription, narrowed_by):
        query = {
            "nothing": {},
            "direction": {"direction__exact": "inbound"},
            "organization": {"organization": subscription.organization.slug},
            "search": {"q": "call-7"},
        }[narrowed_by]

        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(reverse("admin:usage_call_changelist"), query)

        assert response.status_code == 200
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert counts, "the list says how many calls it holds"
        assert all(re.search(r"\bLIMIT\b", sql, re.IGNORECASE) for sql in counts), counts

    def test_a_long_list_says_how_far_it_counted(self, staff_client, many_rows, monkeypatch):
        monkeypatch.setattr(BoundedCountPaginator, "limit", 100)

        response = staff_client.get(reverse("admin:usage_call_changelist"))

        page = response.content.decode()
        assert "100+ calls" in page
        assert response.context["cl"].result_count == 101

    def test_lists_the_newest_calls_first_with_their_employee(self, staff_client, many_rows):
        response = staff_client.get(reverse("admin:usage_call_changelist"))

        shown = list(response.context["cl"].result_list)
        assert shown[0].connected_at == Call.objects.latest("connected_at").connected_at
        assert [c.connected_at for c in shown] == sorted(
            (c.connected_at for c in shown), reverse=True
        )
        assert shown[0].employee.name in response.content.decode()

    def test_finds_a_call_by_its_exact_platform_id_only(self, staff_client, many_rows):
        url = reverse("admin:usage_call_changelist")

        exact = staff_client.get(url, {"q": "call-17"}).context["cl"].result_list
        partial = staff_client.get(url, {"q": "call-1"}).context["cl"].result_list

        assert [c.platform_call_id for c in exact] == ["call-17"]
        assert [c.platform_call_id for c in partial] == ["call-1"]

    def test_filters_by_organization_slug_and_employee(self, staff_client, many_rows):
        employee = many_rows[0]
        url = reverse("admin:usage_call_changelist")

        by_org = staff_client.get(url, {"organization": employee.organization.slug})
        by_employee = staff_client.get(url, {"employee": employee.pk})

        assert {c.organization_id for c in by_org.context["cl"].result_list} == {
            employee.organization_id
        }
        assert {c.employee_id for c in by_employee.context["cl"].result_list} == {employee.pk}

    def test_calls_are_facts_nobody_adds_changes_or_deletes(self, staff_client, many_rows):
        call = Call.objects.first()

        add = staff_client.get(reverse("admin:usage_call_add"))
        change = staff_client.post(reverse("admin:usage_call_change", args=[call.pk]), {})
        delete = staff_client.get(reverse("admin:usage_call_delete", args=[call.pk]))
        view = staff_client.get(reverse("admin:usage_call_change", args=[call.pk]))

        assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
        assert view.status_code == 200
        assert call.platform_call_id in view.content.decode()


@pytest.mark.parametrize(
    "model", ["usagecounter", "usagereport", "spendcap", "spendcapchange", "budgetchange"]
)
def test_counters_reports_and_caps_are_read_only(staff_client, many_rows, model):
    assert staff_client.get(reverse(f"admin:usage_{model}_add")).status_code == 403


def test_staff_read_each_organizations_caps_and_who_changed_them(staff_client, many_rows):
    caps = staff_client.get(reverse("admin:usage_spendcap_changelist")).content.decode()
    changes = staff_client.get(reverse("admin:usage_spendcapchange_changelist")).content.decode()

    assert "$25.00" in caps and "3,600 s" in caps and "Support" in caps
    assert "Cost center Support" in changes
    budget_changes = staff_client.get(
        reverse("admin:usage_budgetchange_changelist")
    ).content.decode()
    assert "500.00" in budget_changes and "Support" in budget_changes


def test_counters_show_storage_in_gib_as_the_usage_page_does(staff_client, subscription, now):
    # Given 1.25 GiB stored now, after a peak of 2 GiB earlier this month
    for report_id, quantity, hours_ago in (("s-1", 2 * 2**30, 5), ("s-2", 1_342_177_280, 0)):
        metering.usage_report_record(
            organization=subscription.organization,
            kind=UsageReport.Kind.STORAGE,
            report_id=report_id,
            quantity=quantity,
            measured_at=now - dt.timedelta(hours=hours_ago),
        )

    # When staff open the counters
    page = staff_client.get(reverse("admin:usage_usagecounter_changelist")).content.decode()

    # Then the latest level and the peak read in GiB
    assert '<td class="field-storage">1.25 GiB</td>' in page
    assert '<td class="field-storage_peak">2.00 GiB</td>' in page


class TestServiceTokens:
    def create(self, staff_client, name="calling platform", **fields):
        response = staff_client.post(
            reverse("admin:usage_servicetoken_add"),
            {"name": name, "all_organizations": "on"} | fields,
            follow=True,
        )
        [message] = [str(m) for m in response.context["messages"] if "copy it now" in str(m)]
        return re.search(r"svc_[\w-]+", message)[0], message

    def authorize(self, client, employee, token):
        return client.post(
            f"/api/v1/orgs/{employee.organization.slug}/calls/authorize",
            {"employee_id": employee.pk},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    def test_the_token_is_shown_once_and_only_its_hash_is_stored(self, staff_client, staff):
        token, message = self.create(staff_client)

        stored = ServiceToken.objects.get()
        assert "copy it now, it will not be shown again" in message
        assert stored.token_hash == ServiceToken.hash(token)
        assert token not in str(ServiceToken.objects.values_list().get())
        assert (stored.name, stored.created_by) == ("calling platform", staff)
        again = staff_client.get(reverse("admin:usage_servicetoken_changelist"))
        assert token not in again.content.decode()

    def test_a_revoked_token_gets_401_from_the_api(self, staff_client, subscription, client):
        employee = EmployeeFactory(organization=subscription.organization)
        token, _ = self.create(staff_client)
        assert self.authorize(client, employee, token).status_code == 200

        staff_client.post(
            reverse("admin:usage_servicetoken_changelist"),
            {"action": "revoke", "_selected_action": [ServiceToken.objects.get().pk]},
        )

        assert ServiceToken.objects.get().revoked_at is not None
        assert self.authorize(client, employee, token).status_code == 401

    def test_a_token_for_named_organizations_with_an_expiry(
        self, staff_client, subscription, client, now
    ):
        employee = EmployeeFactory(organization=subscription.organization)
        other = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)
        token, _ = self.create(
            staff_client,
            name="acme's integration",
            all_organizations="",
            organizations=[subscription.organization.pk],
            expires_at_0="2026-04-01",
            expires_at_1="00:00:00",
        )

        stored = ServiceToken.objects.get()
        assert not stored.all_organizations
        assert list(stored.organizations.all()) == [subscription.organization]
        assert stored.expires_at == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
        assert self.authorize(client, employee, token).status_code == 200
        assert self.authorize(client, other, token).status_code == 403
        listed = staff_client.get(reverse("admin:usage_servicetoken_changelist")).content
        assert subscription.organization.name in listed.decode()

    @pytest.mark.parametrize("all_organizations", ["", "on"])
    def test_a_token_reaches_all_organizations_or_names_some_never_both_nor_neither(
        self, staff_client, subscription, all_organizations
    ):
        organizations = [subscription.organization.pk] if all_organizations else []

        response = staff_client.post(
            reverse("admin:usage_servicetoken_add"),
            {
                "name": "unclear",
                "all_organizations": all_organizations,
                "organizations": organizations,
            },
        )

        assert response.status_code == 200
        assert "one of the two" in response.content.decode()
        assert not ServiceToken.objects.exists()

    def test_tokens_are_never_edited(self, staff_client):
        self.create(staff_client)
        url = reverse("admin:usage_servicetoken_change", args=[ServiceToken.objects.get().pk])

        response = staff_client.post(url, {"name": "renamed"})

        assert response.status_code == 403
        assert ServiceToken.objects.get().name == "calling platform"


class TestEmployees:
    def test_staff_add_an_employee_within_the_quota(self, staff_client, subscription):
        response = staff_client.post(
            reverse("admin:usage_aiemployee_add"),
            {"organization": subscription.organization.pk, "name": "Reception"},
            follow=True,
        )

        assert response.status_code == 200
        employee = AIEmployee.objects.get()
        assert (employee.name, employee.is_active) == ("Reception", True)

    def test_the_quota_refuses_one_more_and_nothing_is_written(self, staff_client, now):
        subscription = SubscriptionFactory(plan=PlanFactory(max_active_employees=1), now=now)
        EmployeeFactory(organization=subscription.organization)

        response = staff_client.post(
            reverse("admin:usage_aiemployee_add"),
            {"organization": subscription.organization.pk, "name": "One too many"},
            follow=True,
        )

        assert "1 of 1 AI employees active" in response.content.decode()
        assert AIEmployee.objects.count() == 1

    def test_deactivating_frees_the_quota_place(self, staff_client, subscription):
        employee = EmployeeFactory(organization=subscription.organization)

        staff_client.post(
            reverse("admin:usage_aiemployee_changelist"),
            {"action": "deactivate", "_selected_action": [employee.pk]},
        )

        employee.refresh_from_db()
        assert not employee.is_active
        assert employee.deactivated_at is not None


class TestPhoneNumbers:
    def test_provisioning_takes_the_fee_from_the_price_list(self, staff_client, subscription):
        PhoneNumberRateFactory()  # $1.50 + $0.25 regulatory fee + $5.00 for vanity

        staff_client.post(
            reverse("admin:usage_phonenumber_add"),
            {
                "organization": subscription.organization.pk,
                "number": "+12125550100",
                "number_type": "local",
                "country": "US",
                "is_vanity": "on",
            },
        )

        assert str(PhoneNumber.objects.get().monthly_fee) == "$6.75"

    def test_releasing_keeps_the_number_and_stops_its_fee(self, staff_client, subscription):
        PhoneNumberRateFactory()
        number = services.phone_number_provision(
            organization=subscription.organization,
            number="+12125550100",
            number_type="local",
            country="US",
        )

        staff_client.post(
            reverse("admin:usage_phonenumber_changelist"),
            {"action": "release", "_selected_action": [number.pk]},
        )

        number.refresh_from_db()
        assert number.released_at is not None
        change = staff_client.post(reverse("admin:usage_phonenumber_change", args=[number.pk]))
        assert change.status_code == 403


def test_the_price_list_shows_each_rate_and_its_fees(staff_client):
    PhoneNumberRateFactory()

    response = staff_client.get(reverse("admin:usage_phonenumberrate_changelist"))

    page = response.content.decode()
    assert "$1.75" in page  # $1.50 + $0.25 regulatory fee
    assert "$6.75" in page  # and $5.00 for a vanity number


def test_people_who_are_not_staff_cannot_reach_the_usage_admin(client, subscription):
    client.force_login(UserFactory())

    assert client.get(reverse("admin:usage_call_changelist")).status_code == 302
