"""Sign-in throttling: a username and address that failed too often are refused, even with
the right password, until the cool-off has passed."""

import datetime as dt
import logging

import pytest
import time_machine
from django.urls import reverse

from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def attempt(client, password, *, username="alice", url=LOGIN, address="203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client):
    return "_auth_user_id" in client.session


def test_forty_wrong_passwords_then_the_right_one_does_not_sign_in(client, alice):
    for _ in range(40):
        attempt(client, "wrong")

    response = attempt(client, PASSWORD)

    assert response.status_code == 429
    assert not signed_in(client)
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "After 5 wrong passwords for <strong>alice</strong>" in page
    assert "paused for 15 minutes, even with the right password" in page


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(client, alice):
    for _ in range(4):
        assert attempt(client, "wrong").status_code == 200

    response = attempt(client, PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_a_success_starts_the_count_again(client, alice):
    for _ in range(4):
        attempt(client, "wrong")
    attempt(client, PASSWORD)
    client.logout()

    for _ in range(4):
        attempt(client, "wrong")

    assert attempt(client, PASSWORD).status_code == 302


def test_the_limit_and_the_cool_off_are_settings(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=3)
    attempt(client, "wrong")

    response = attempt(client, "wrong")

    assert response.status_code == 429
    assert "paused for 3 minutes" in response.content.decode()


def test_the_lockout_is_for_the_username_and_address_together(client, alice):
    UserFactory(username="bob")
    for _ in range(5):
        attempt(client, "wrong")

    assert attempt(client, PASSWORD, address="198.51.100.9").status_code == 302
    client.logout()
    assert attempt(client, PASSWORD, username="bob").status_code == 302


def test_the_right_password_works_again_after_the_cool_off(client, alice):
    start = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            attempt(client, "wrong")

    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False):
        assert attempt(client, PASSWORD).status_code == 302


def test_trying_during_the_lockout_starts_the_cool_off_again(client, alice):
    start = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            attempt(client, "wrong")

    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        assert attempt(client, PASSWORD).status_code == 429

    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False):
        assert attempt(client, PASSWORD).status_code == 429

    with time_machine.travel(start + dt.timedelta(minutes=32), tick=False):
        assert attempt(client, PASSWORD).status_code == 302


def test_the_admin_sign_in_is_throttled_too(client):
    StaffFactory(username="support")
    for _ in range(5):
        attempt(client, "wrong", username="support", url=ADMIN_LOGIN)

    response = attempt(client, PASSWORD, username="support", url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert not signed_in(client)


def test_each_failure_is_logged_with_the_username_and_address(client, alice, caplog):
    with caplog.at_level(logging.WARNING, logger="axes"):
        attempt(client, "wrong")
        attempt(client, "wrong")

    failures = [r.getMessage() for r in caplog.records if "login failure" in r.getMessage()]
    assert len(failures) == 2
    assert all("alice" in line and "203.0.113.7" in line for line in failures)
    assert not any("wrong" in r.getMessage() for r in caplog.records)


def test_behind_a_proxy_the_address_the_proxy_saw_is_counted(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        # What the client claims comes first; the proxy appends the address it saw.
        client.post(
            LOGIN,
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7",
        )

    locked = client.post(
        LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    elsewhere = client.post(
        LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )

    assert locked.status_code == 429
    assert elsewhere.status_code == 302


def test_the_login_page_links_back_from_the_lockout_page(client, alice):
    for _ in range(5):
        attempt(client, "wrong")

    page = attempt(client, PASSWORD).content.decode()

    assert f'href="{reverse("login")}"' in page
