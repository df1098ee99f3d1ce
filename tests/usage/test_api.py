import datetime as dt
from decimal import Decimal

import pytest

from billing.lifecycle import renewals
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
)
from usage.models import Call, PhoneNumber, UsageCounter
from usage.tokens.services import service_token_create, service_token_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    return service_token_create(name="calling platform", all_organizations=True)[1]


@pytest.fixture
def api(client, token):
    """POST/GET JSON to /api/v1/ with the service token."""

    class Api:
        def post(self, path, body=None, **extra):
            return client.post(
                f"/api/v1/{path}",
                body or {},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                **extra,
            )

        def get(self, path):
            return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return Api()


@pytest.fixture
def employee(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(max_active_employees=2),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    return EmployeeFactory(organization=subscription.organization)


def call(employee, call_id="call-1", seconds=120, **changes):
    connected = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)
    return {
        "call_id": call_id,
        "employee_id": employee.pk,
        "direction": "inbound",
        "connected_at": connected.isoformat(),
        "ended_at": (connected + dt.timedelta(seconds=seconds)).isoformat(),
    } | changes


def authorize_with(client, employee, authorization: str | None):
    """Ask to authorize a call of `employee` with this `Authorization` header, or none."""
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return client.post(
        f"/api/v1/orgs/{employee.organization.slug}/calls/authorize",
        {"employee_id": employee.pk},
        content_type="application/json",
        **extra,
    )


class TestAuthentication:
    @pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc"])
    def test_requests_without_a_valid_token_get_401(self, client, employee, header):
        response = authorize_with(client, employee, header)

        assert response.status_code == 401

    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
    def test_the_scheme_is_read_whatever_its_case(self, client, employee, token, scheme):
        response = authorize_with(client, employee, f"{scheme} {token}")

        assert response.status_code == 200
        assert response.json()["allowed"] is True

    def test_a_revoked_token_gets_401(self, client, employee):
        service_token, token = service_token_create(name="old", all_organizations=True)
        service_token_revoke(service_token=service_token)

        response = authorize_with(client, employee, f"Bearer {token}")

        assert response.status_code == 401

    def test_only_the_hash_of_a_token_is_stored(self, token):
        from usage.models import ServiceToken

        stored = ServiceToken.objects.get()
        assert token not in (stored.token_hash, stored.hint)
        assert stored.token_hash == ServiceToken.hash(token)


class TestCalls:
    def test_authorize_answers_allowed_reason_and_remaining_seconds(
        self, api, employee, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(2):
            response = api.post(
                f"orgs/{employee.organization.slug}/calls/authorize", {"employee_id": employee.pk}
            )

        assert response.status_code == 200
        assert response.json() == {
            "allowed": True,
            "reason": "ok",
            "remaining_seconds": None,
            "usage_percent": 0,
            "warning": None,
        }

    def test_a_finished_call_is_recorded_once(self, api, employee):
        first = api.post(f"orgs/{employee.organization.slug}/calls", call(employee))
        again = api.post(f"orgs/{employee.organization.slug}/calls", call(employee))

        assert (first.status_code, first.json()) == (
            201,
            {"call_id": "call-1", "recorded": True, "billable_seconds": 120},
        )
        assert (again.status_code, again.json()["recorded"]) == (200, False)
        assert UsageCounter.objects.get().call_seconds == 120

    def test_a_batch_is_recorded_and_names_the_duplicates(self, api, employee):
        api.post(f"orgs/{employee.organization.slug}/calls", call(employee, "old"))
        org = employee.organization.slug
        batch = [call(employee, f"c{n}", org=org) for n in range(5)] + [
            call(employee, "old", org=org)
        ]

        response = api.post("calls/batch", {"calls": batch})

        assert response.json() == {"recorded": 5, "duplicates": ["old"]}
        assert UsageCounter.objects.get().call_seconds == 6 * 120

    def test_the_same_call_at_another_utc_offset_is_a_plain_repeat(self, api, employee):
        org = employee.organization.slug
        api.post(f"orgs/{org}/calls", call(employee))

        again = api.post(
            f"orgs/{org}/calls",
            call(
                employee,
                connected_at="2026-03-16T10:00:00+01:00",
                ended_at="2026-03-16T05:02:00-04:00",
            ),
        )

        assert (again.status_code, again.json()["recorded"]) == (200, False)

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            ({"direction": "outbound"}, ["direction"]),
            ({"ended_at": "2026-03-16T09:30:00+00:00"}, ["ended_at"]),
            (
                {"connected_at": "2026-03-16T08:00:00+00:00", "ended_at": "2026-03-16T08:02:00Z"},
                ["connected_at", "ended_at"],
            ),
        ],
    )
    def test_a_call_id_reported_again_with_other_content_is_409_naming_what_differs(
        self, api, employee, changes, fields
    ):
        org = employee.organization.slug
        api.post(f"orgs/{org}/calls", call(employee))

        response = api.post(f"orgs/{org}/calls", call(employee, **changes))

        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "call_conflict"
        assert body["conflicts"] == [{"call_id": "call-1", "fields": fields, "index": None}]
        assert Call.objects.count() == 1
        assert UsageCounter.objects.get().call_seconds == 120

    def test_a_call_id_reported_by_another_organization_is_409(self, api, employee, now):
        stranger = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)
        api.post(f"orgs/{employee.organization.slug}/calls", call(employee))

        response = api.post(f"orgs/{stranger.organization.slug}/calls", call(stranger))

        assert (response.status_code, response.json()["code"]) == (409, "call_conflict")
        assert response.json()["conflicts"][0]["fields"] == ["organization", "employee_id"]
        assert not UsageCounter.objects.filter(organization=stranger.organization).exists()

    def test_a_conflicting_call_rejects_the_batch_naming_its_index(self, api, employee):
        org = employee.organization.slug
        api.post(f"orgs/{org}/calls", call(employee, "old"))
        batch = [call(employee, f"c{n}", org=org) for n in range(3)]
        batch.insert(2, call(employee, "old", org=org, direction="outbound"))

        response = api.post("calls/batch", {"calls": batch})

        assert response.status_code == 409
        assert response.json()["conflicts"] == [
            {"call_id": "old", "fields": ["direction"], "index": 2}
        ]
        assert list(Call.objects.values_list("platform_call_id", flat=True)) == ["old"]
        assert UsageCounter.objects.get().calls == 1

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"ended_at": "2026-03-16T08:59:00+00:00"}, "ended_at"),  # before connect
            (
                {
                    "connected_at": "2026-03-14T09:00:00+00:00",
                    "ended_at": "2026-03-15T09:00:01+00:00",
                },
                "ended_at",
            ),  # over 24 h
            ({"connected_at": "2026-03-16T09:00:00"}, "connected_at"),  # no timezone
            ({"connected_at": "yesterday"}, "connected_at"),
            ({"employee_id": "seven"}, "employee_id"),
            ({"employee_id": -1}, "employee_id"),
            ({"employee_id": 987_654}, "employee_id"),  # unknown
            ({"direction": "sideways"}, "direction"),
            ({"call_id": ""}, "call_id"),
        ],
    )
    def test_bad_input_gets_422_naming_the_field_and_writes_nothing(
        self, api, employee, changes, field
    ):
        response = api.post(f"orgs/{employee.organization.slug}/calls", call(employee, **changes))

        assert response.status_code == 422
        [problem] = response.json()["detail"]
        assert problem["loc"][-1] == field
        assert problem["msg"]
        assert Call.objects.count() == 0

    def test_an_employee_of_another_organization_is_refused(self, api, employee, now):
        stranger = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)

        response = api.post(f"orgs/{employee.organization.slug}/calls", call(stranger))

        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "unknown_employee"

    def test_an_unknown_organization_is_404(self, api, employee):
        response = api.post("orgs/nobody/calls", call(employee))

        assert response.status_code == 404
        assert response.json() == {
            "code": "organization_not_found",
            "detail": "There is no organization with the id 'nobody'.",
        }

    def test_one_bad_call_rejects_the_whole_batch(self, api, employee):
        org = employee.organization.slug
        batch = [call(employee, f"c{n}", org=org) for n in range(3)]
        batch[2]["ended_at"] = "2026-03-16T08:00:00+00:00"

        response = api.post("calls/batch", {"calls": batch})

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "calls", 2, "ended_at"]
        assert Call.objects.count() == 0

    def test_a_batch_of_more_than_1000_calls_is_refused(self, api, employee):
        org = employee.organization.slug
        batch = [call(employee, f"c{n}", org=org) for n in range(1_001)]

        response = api.post("calls/batch", {"calls": batch})

        assert response.status_code == 422
        assert "calls" in response.json()["detail"][0]["loc"]
        assert Call.objects.count() == 0

    def test_the_same_call_twice_in_a_batch_is_refused(self, api, employee):
        org = employee.organization.slug

        response = api.post(
            "calls/batch", {"calls": [call(employee, org=org), call(employee, org=org)]}
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "repeated_in_batch"

    def test_malformed_json_is_refused(self, client, token, employee):
        response = client.post(
            "/api/v1/calls/batch",
            "{not json",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

        assert 400 <= response.status_code < 500


class TestEmployees:
    def test_create_deactivate_reactivate(self, api, employee):
        org = employee.organization.slug

        created = api.post(f"orgs/{org}/employees", {"name": "Front desk", "cost_center": "Clinic"})
        deactivated = api.post(f"orgs/{org}/employees/{created.json()['id']}/deactivate")
        reactivated = api.post(f"orgs/{org}/employees/{created.json()['id']}/reactivate")

        assert created.status_code == 201
        assert created.json() | {"id": 0} == {
            "id": 0,
            "name": "Front desk",
            "cost_center": "Clinic",
            "inbound_capable": True,
            "is_active": True,
        }
        assert deactivated.json()["is_active"] is False
        assert reactivated.json()["is_active"] is True

    def test_at_the_quota_the_answer_is_409_with_the_limit_and_what_to_do(self, api, employee):
        org = employee.organization.slug
        api.post(f"orgs/{org}/employees", {"name": "Second"})

        response = api.post(f"orgs/{org}/employees", {"name": "Third"})

        assert response.status_code == 409
        body = response.json()
        assert (body["code"], body["limit"], body["active"], body["ways_out"]) == (
            "employee_quota_reached",
            2,
            2,
            ["upgrade", "deactivate"],
        )

    def test_another_organizations_employee_is_404(self, api, employee, now):
        stranger = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)

        response = api.post(f"orgs/{employee.organization.slug}/employees/{stranger.pk}/deactivate")

        assert response.status_code == 404
        assert response.json()["code"] == "employee_not_found"
        stranger.refresh_from_db()
        assert stranger.is_active


class TestPhoneNumbers:
    def test_provision_assign_and_release(self, api, employee):
        PhoneNumberRateFactory()
        org = employee.organization.slug

        provisioned = api.post(
            f"orgs/{org}/phone-numbers", {"number": "+12125550100", "country": "US", "vanity": True}
        )
        number_id = provisioned.json()["id"]
        assigned = api.post(
            f"orgs/{org}/phone-numbers/{number_id}/assign", {"employee_id": employee.pk}
        )
        released = api.post(f"orgs/{org}/phone-numbers/{number_id}/release")
        again = api.post(f"orgs/{org}/phone-numbers", {"number": "+12125550100", "country": "US"})

        assert provisioned.status_code == 201
        assert (provisioned.json()["monthly_fee"], provisioned.json()["currency"]) == (
            "6.75",
            "USD",
        )
        assert assigned.json()["employee_id"] == employee.pk
        assert released.json()["released_at"] is not None
        assert (again.status_code, again.json()["code"]) == (409, "number_released")

    def test_a_number_type_not_on_the_price_list_is_422_with_its_code(self, api, employee):
        PhoneNumberRateFactory(country="US")

        response = api.post(
            f"orgs/{employee.organization.slug}/phone-numbers",
            {"number": "+442071838750", "country": "GB"},
        )

        assert (response.status_code, response.json()["code"]) == (422, "no_rate")
        assert PhoneNumber.objects.count() == 0

    def test_an_unknown_number_is_404(self, api, employee):
        response = api.post(f"orgs/{employee.organization.slug}/phone-numbers/987654/release")

        assert response.status_code == 404
        assert response.json()["code"] == "phone_number_not_found"

    @pytest.mark.parametrize(
        "number", ["2125550100", "+0123456789", "+1 212 555", "+1212555010012345"]
    )
    def test_malformed_numbers_are_refused(self, api, employee, number):
        response = api.post(
            f"orgs/{employee.organization.slug}/phone-numbers", {"number": number, "country": "US"}
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "number"
        assert PhoneNumber.objects.count() == 0


class TestUsage:
    def test_storage_and_api_usage_reports_show_in_the_usage_summary(self, api, employee):
        org = employee.organization.slug
        api.post(f"orgs/{org}/calls", call(employee))

        storage = api.post(
            f"orgs/{org}/storage",
            {"report_id": "s1", "bytes": 2 * 1024**3, "measured_at": "2026-03-16T09:30:00+00:00"},
        )
        api_calls = api.post(
            f"orgs/{org}/api-usage",
            {"report_id": "a1", "count": 250, "measured_at": "2026-03-16T09:30:00+00:00"},
        )
        repeat = api.post(
            f"orgs/{org}/api-usage",
            {"report_id": "a1", "count": 250, "measured_at": "2026-03-16T09:30:00+00:00"},
        )
        usage = api.get(f"orgs/{org}/usage").json()

        assert (storage.status_code, api_calls.status_code, repeat.json()) == (
            201,
            201,
            {"recorded": False},
        )
        assert usage["call_seconds"] == {"used": 120, "limit": 180_000}
        assert usage["storage_bytes"] == {"used": 2 * 1024**3, "limit": 50 * 1024**3}
        assert usage["api_calls"] == {"used": 250, "limit": 100_000}
        assert usage["employees"] == {"used": 1, "limit": 2}
        assert usage["currency"] == "USD"

    @pytest.mark.parametrize(
        "body",
        [
            {"report_id": "x", "bytes": -5, "measured_at": "2026-03-16T09:30:00+00:00"},
            {"report_id": "x", "bytes": "lots", "measured_at": "2026-03-16T09:30:00+00:00"},
        ],
    )
    def test_bad_storage_reports_are_refused(self, api, employee, body):
        response = api.post(f"orgs/{employee.organization.slug}/storage", body)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "bytes"


def test_the_openapi_document_and_its_docs_page_are_served(client):
    spec = client.get("/api/v1/openapi.json").json()

    assert "/api/v1/orgs/{org}/calls/authorize" in spec["paths"]
    assert "/api/v1/calls/batch" in spec["paths"]
    assert client.get("/api/v1/docs").status_code == 200


class TestCallsDuringATrial:
    """An allowed call always completes and is recorded, in a trial too: its usage is shown
    on the usage API and page, and never charged."""

    @pytest.fixture
    def trialing(self, now):
        # Subscribed on 10 Mar with a 14-day trial: the trial runs to 24 Mar, the anchor.
        plan = PlanFactory(included_call_seconds=600, trial_days=14)
        subscription = SubscriptionFactory(
            plan=plan, start=dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC), trial=True, now=now
        )
        assert subscription.status == "trialing"
        return subscription

    def test_a_call_allowed_in_the_trial_is_recorded_shown_and_not_charged(
        self, api, trialing, now, client
    ):
        organization = trialing.organization
        employee = EmployeeFactory(organization=organization)
        slug = organization.slug

        allowed = api.post(f"orgs/{slug}/calls/authorize", {"employee_id": employee.pk})
        reported = api.post(f"orgs/{slug}/calls", call(employee, seconds=900))
        usage = api.get(f"orgs/{slug}/usage").json()

        assert allowed.json()["allowed"] is True
        assert reported.status_code == 201, reported.json()
        assert usage["is_trial"] is True
        assert usage["call_seconds"] == {"used": 900, "limit": 600}
        assert (usage["overage_seconds"], Decimal(usage["overage_cost"])) == (300, 0)
        # the usage page shows it, as the trial's
        client.force_login(MembershipFactory(organization=organization).user)
        page = client.get(f"/billing/{slug}/usage/").content.decode()
        assert "Free trial until 24 Mar 2026" in page
        assert "900 s" in page
        # and the first invoice, at the trial's end, charges the plan and nothing of the trial
        [invoice] = renewals.subscription_renew_if_needed(
            subscription_id=trialing.pk, now=dt.datetime(2026, 3, 24, tzinfo=dt.UTC)
        )
        assert [line.kind for line in invoice.lines.all()] == ["subscription"]

    def test_a_trial_call_reported_after_the_trial_stays_in_the_trial(
        self, api, trialing, time_machine
    ):
        employee = EmployeeFactory(organization=trialing.organization)
        renewals.subscription_renew_if_needed(
            subscription_id=trialing.pk, now=dt.datetime(2026, 3, 24, tzinfo=dt.UTC)
        )
        time_machine.move_to(dt.datetime(2026, 3, 25, 12, tzinfo=dt.UTC))

        reported = api.post(f"orgs/{trialing.organization.slug}/calls", call(employee))

        assert reported.status_code == 201, reported.json()
        trial_counter, *later = UsageCounter.objects.filter(
            organization=trialing.organization
        ).order_by("period_start")
        assert trial_counter.period_start == dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
        assert trial_counter.call_seconds == 120
        assert all(counter.call_seconds == 0 for counter in later)

    def test_a_call_before_the_trial_began_is_refused(self, api, trialing):
        employee = EmployeeFactory(organization=trialing.organization)
        early = dt.datetime(2026, 3, 10, 8, tzinfo=dt.UTC)

        reported = api.post(
            f"orgs/{trialing.organization.slug}/calls",
            call(
                employee,
                connected_at=early.isoformat(),
                ended_at=(early + dt.timedelta(minutes=1)).isoformat(),
            ),
        )

        assert reported.status_code == 422
        assert reported.json()["detail"][0]["type"] == "before_subscription"
