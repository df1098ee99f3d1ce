"""The PostgreSQL backend's health checks of a kept connection: at most every
CONN_HEALTH_CHECK_SECONDS, and a connection that broke while idle is still replaced before a
request uses it."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def clock(monkeypatch):
    """The backend's monotonic clock, moved by hand."""
    now = [1_000.0]
    monkeypatch.setattr("config.postgresql.base.monotonic", lambda: now[0])
    return now


@pytest.fixture
def kept_connection():
    """A connection of its own, as a web process keeps one between requests."""
    database = connections.create_connection(DEFAULT_DB_ALIAS)
    yield database
    database.close()


def start_request(database) -> None:
    """What Django does to each connection when a request starts."""
    database.close_if_unusable_or_obsolete()


def backend_of(database) -> int:
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_in_use_is_not_checked_again_within_the_setting(
    clock, kept_connection, monkeypatch
):
    # Given a connection opened a moment ago
    seconds = kept_connection.settings_dict["CONN_HEALTH_CHECK_SECONDS"]
    backend = backend_of(kept_connection)
    checks = []
    real_check = kept_connection.is_usable
    monkeypatch.setattr(kept_connection, "is_usable", lambda: checks.append(1) or real_check())

    # When requests use it until just before the setting's seconds have passed
    clock[0] += seconds - 0.5
    start_request(kept_connection)

    # Then none of them checks it: the same connection answers
    assert backend_of(kept_connection) == backend
    assert checks == []

    # And once they have passed, the next request checks it, once
    clock[0] += 1
    start_request(kept_connection)
    assert backend_of(kept_connection) == backend
    assert backend_of(kept_connection) == backend
    assert checks == [1]


def test_a_connection_broken_while_idle_is_replaced_before_a_request_uses_it(
    clock, kept_connection
):
    # Given a kept connection whose server process was ended while it was idle
    broken = backend_of(kept_connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [broken])

    # When a request uses it once the setting's seconds have passed
    clock[0] += kept_connection.settings_dict["CONN_HEALTH_CHECK_SECONDS"]
    start_request(kept_connection)

    # Then its query runs, on a new connection
    assert backend_of(kept_connection) != broken
