"""Service tokens reach every organization only when made to; otherwise the organizations
they name, and none after their expiry."""

import datetime as dt

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from billing.errors import BillingError
from tests.factories import EmployeeFactory, SubscriptionFactory
from usage.models import AIEmployee, Call, ServiceToken
from usage.tokens import selectors as token_selectors
from usage.tokens.services import service_token_create, service_token_revoke

pytestmark = pytest.mark.django_db

CONNECTED = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def acme(now):
    return EmployeeFactory(organization=SubscriptionFactory(now=now).organization)


@pytest.fixture
def globex(now):
    return EmployeeFactory(organization=SubscriptionFactory(now=now).organization)


def post(client, token, path, body=None):
    return client.post(
        f"/api/v1/{path}",
        body or {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def authorize(client, token, employee):
    return post(
        client,
        token,
        f"orgs/{employee.organization.slug}/calls/authorize",
        {"employee_id": employee.pk},
    )


def a_call(employee, call_id):
    return {
        "org": employee.organization.slug,
        "call_id": call_id,
        "employee_id": employee.pk,
        "direction": "outbound",
        "connected_at": CONNECTED.isoformat(),
        "ended_at": (CONNECTED + dt.timedelta(seconds=60)).isoformat(),
    }


class TestScope:
    def test_a_token_for_one_organization_is_refused_for_another(self, client, acme, globex):
        _, token = service_token_create(name="acme", organizations=[acme.organization])

        assert authorize(client, token, acme).status_code == 200
        refused = authorize(client, token, globex)

        assert refused.status_code == 403
        assert refused.json()["code"] == "token_out_of_scope"
        assert globex.organization.slug in refused.json()["detail"]

    def test_nothing_is_written_for_an_organization_outside_the_scope(self, client, acme, globex):
        _, token = service_token_create(name="acme", organizations=[acme.organization])

        created = post(client, token, f"orgs/{globex.organization.slug}/employees", {"name": "X"})
        reported = post(
            client,
            token,
            f"orgs/{globex.organization.slug}/calls",
            {k: v for k, v in a_call(globex, "call-1").items() if k != "org"},
        )
        usage = client.get(
            f"/api/v1/orgs/{globex.organization.slug}/usage",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

        assert [created.status_code, reported.status_code, usage.status_code] == [403] * 3
        assert not AIEmployee.objects.filter(name="X").exists()
        assert not Call.objects.exists()

    def test_an_unknown_organization_is_out_of_scope_not_missing(self, client, acme):
        _, token = service_token_create(name="acme", organizations=[acme.organization])

        response = client.get("/api/v1/orgs/nowhere/usage", HTTP_AUTHORIZATION=f"Bearer {token}")

        assert response.status_code == 403
        assert response.json()["code"] == "token_out_of_scope"

    def test_a_batch_with_one_call_outside_the_scope_is_refused_whole(self, client, acme, globex):
        _, token = service_token_create(name="acme", organizations=[acme.organization])

        refused = post(
            client, token, "calls/batch", {"calls": [a_call(acme, "a-1"), a_call(globex, "g-1")]}
        )
        accepted = post(client, token, "calls/batch", {"calls": [a_call(acme, "a-1")]})

        assert refused.status_code == 403
        assert refused.json()["code"] == "token_out_of_scope"
        assert accepted.status_code == 200
        assert list(Call.objects.values_list("platform_call_id", flat=True)) == ["a-1"]

    def test_the_platforms_token_reaches_every_organization(self, client, acme, globex):
        _, token = service_token_create(name="platform", all_organizations=True)

        assert authorize(client, token, acme).status_code == 200
        assert authorize(client, token, globex).status_code == 200
        batch = post(
            client, token, "calls/batch", {"calls": [a_call(acme, "a-1"), a_call(globex, "g-1")]}
        )
        assert batch.status_code == 200

    @pytest.mark.parametrize("all_organizations", [True, False])
    def test_a_token_reaches_all_or_names_some_never_both_nor_neither(
        self, acme, all_organizations
    ):
        organizations = [acme.organization] if all_organizations else []

        with pytest.raises(BillingError) as refusal:
            service_token_create(
                name="unclear", all_organizations=all_organizations, organizations=organizations
            )

        assert refusal.value.code == "token_scope_unclear"
        assert not ServiceToken.objects.exists()

    def test_authorizing_with_a_scoped_token_stays_within_two_queries(
        self, client, acme, django_assert_max_num_queries
    ):
        _, token = service_token_create(name="acme", organizations=[acme.organization])

        with django_assert_max_num_queries(2):
            response = authorize(client, token, acme)

        assert response.json()["allowed"] is True


class TestExpiry:
    def test_a_token_works_until_its_expiry_then_gets_401(self, client, acme, time_machine):
        expiry = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
        _, token = service_token_create(name="temporary", all_organizations=True, expires_at=expiry)
        time_machine.move_to(expiry - dt.timedelta(seconds=1), tick=False)
        assert authorize(client, token, acme).status_code == 200

        time_machine.move_to(expiry, tick=False)
        response = authorize(client, token, acme)

        assert response.status_code == 401
        assert response.json()["code"] == "token_expired"
        assert "2026-04-01T00:00:00+00:00" in response.json()["detail"]

    def test_an_expired_batch_gets_401_and_writes_nothing(self, client, acme, now):
        _, token = service_token_create(
            name="old", all_organizations=True, expires_at=now - dt.timedelta(days=1)
        )

        response = post(client, token, "calls/batch", {"calls": [a_call(acme, "a-1")]})

        assert response.status_code == 401
        assert not Call.objects.exists()


def test_the_openapi_document_lists_403_and_the_expired_token(client):
    document = client.get("/api/v1/openapi.json").json()

    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert "403" in operation["responses"], path
            assert "401" in operation["responses"], path
    assert "token_out_of_scope" in document["info"]["description"]
    assert "token_expired" in document["info"]["description"]


BEFORE_SCOPES = "before_scopes"


class EverythingToTheDatabaseBeforeScopes:
    """Routes every read and write, the migrations' own included, to that database."""

    def db_for_read(self, model, **hints):
        return BEFORE_SCOPES

    def db_for_write(self, model, **hints):
        return BEFORE_SCOPES


@pytest.fixture
def empty_database(settings):
    """A database of its own, with no table yet, beside the test database, used for every
    read and write: migrating it walks only the migrations asked for, where taking the test
    database back would first work out every app's state at every migration before."""
    test_database = connections[DEFAULT_DB_ALIAS]
    settings_dict = {**test_database.settings_dict, "TEST": {**test_database.settings_dict["TEST"]}}
    settings_dict["TEST"]["NAME"] = None  # named after the alias (in memory) or the database
    database = type(test_database)(settings_dict, alias=BEFORE_SCOPES)
    connections[BEFORE_SCOPES] = database
    try:
        database.settings_dict["NAME"] = database.creation._create_test_db(
            verbosity=0, autoclobber=True, keepdb=False
        )
        settings.DATABASE_ROUTERS = [EverythingToTheDatabaseBeforeScopes()]
        yield database
    finally:
        del connections[BEFORE_SCOPES]
        database.close()
        database.creation._destroy_test_db(database.settings_dict["NAME"], verbosity=0)


def test_tokens_made_before_scopes_keep_reaching_every_organization(empty_database):
    executor = MigrationExecutor(empty_database)
    before = [("usage", "0003_call_facts_protected")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    old_apps.get_model("usage", "ServiceToken").objects.create(
        name="platform", token_hash="a" * 64, hint="svc_aaaaaa"
    )

    # Migrated past the scopes (0004) and on to the latest schema, which the model reads
    executor.loader.build_graph()
    executor.migrate([node for node in executor.loader.graph.leaf_nodes() if node[0] == "usage"])

    assert ServiceToken.objects.get(name="platform").all_organizations


class TestKeptByTheProcess:
    """A process keeps a token it read for `SERVICE_TOKEN_CACHE_SECONDS`: authorizing again
    reads no token, and revoking or expiring still refuses it."""

    @pytest.fixture
    def clock(self, monkeypatch):
        """The process's monotonic clock, moved by hand."""
        seconds = [1000.0]
        monkeypatch.setattr(token_selectors, "_clock", lambda: seconds[0])
        return seconds

    def test_authorizing_again_costs_one_query(
        self, client, acme, django_assert_max_num_queries, clock
    ):
        _, token = service_token_create(name="acme", organizations=[acme.organization])
        authorize(client, token, acme)

        with django_assert_max_num_queries(1):
            response = authorize(client, token, acme)

        assert response.json()["allowed"] is True

    def test_a_revoked_token_is_refused_at_once(self, client, acme, clock, committed):
        service_token, token = service_token_create(name="acme", all_organizations=True)
        assert authorize(client, token, acme).status_code == 200

        with committed():
            service_token_revoke(service_token=service_token)

        assert authorize(client, token, acme).status_code == 401

    def test_a_token_revoked_by_another_process_is_refused_after_the_ttl(
        self, client, acme, clock, settings
    ):
        settings.SERVICE_TOKEN_CACHE_SECONDS = 10
        _, token = service_token_create(name="acme", all_organizations=True)
        assert authorize(client, token, acme).status_code == 200
        # Revoked elsewhere: this process is not told
        ServiceToken.objects.update(revoked_at=CONNECTED)

        clock[0] += 9.9
        assert authorize(client, token, acme).status_code == 200
        clock[0] += 0.1
        assert authorize(client, token, acme).status_code == 401

    def test_a_kept_token_still_expires_on_time(self, client, acme, clock, time_machine):
        expiry = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
        _, token = service_token_create(name="temporary", all_organizations=True, expires_at=expiry)
        time_machine.move_to(expiry - dt.timedelta(seconds=1), tick=False)
        assert authorize(client, token, acme).status_code == 200

        time_machine.move_to(expiry, tick=False)

        assert authorize(client, token, acme).json()["code"] == "token_expired"

    def test_a_kept_token_reaches_only_its_organizations(self, client, acme, globex, clock):
        _, token = service_token_create(name="acme", organizations=[acme.organization])
        assert authorize(client, token, acme).status_code == 200

        assert authorize(client, token, globex).status_code == 403
        assert authorize(client, token, acme).status_code == 200

    def test_with_a_ttl_of_zero_every_request_reads_the_token(self, client, acme, clock, settings):
        settings.SERVICE_TOKEN_CACHE_SECONDS = 0
        _, token = service_token_create(name="acme", all_organizations=True)
        assert authorize(client, token, acme).status_code == 200

        ServiceToken.objects.update(revoked_at=CONNECTED)

        assert authorize(client, token, acme).status_code == 401
