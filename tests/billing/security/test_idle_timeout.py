"""Staff sessions end after STAFF_IDLE_TIMEOUT_MINUTES without a request; organization users
keep the ordinary session."""

import datetime as dt

import pytest
import time_machine

from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, sign_in

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)


def get_at(client, minutes, url="/admin/"):
    with time_machine.travel(START + dt.timedelta(minutes=minutes), tick=False):
        return client.get(url)


@pytest.fixture
def support(client):
    with time_machine.travel(START, tick=False):
        return sign_in(client, UserFactory(username="support", is_staff=True, is_superuser=True))


def test_a_staff_session_ends_after_the_idle_timeout(support, settings):
    settings.STAFF_IDLE_TIMEOUT_MINUTES = 30

    assert get_at(support, 29).status_code == 200
    ended = get_at(support, 60)

    assert ended.status_code == 302
    assert ended.url == "/accounts/login/?next=/admin/"
    assert "_auth_user_id" not in support.session
    page = support.get(ended.url).content.decode()
    assert "signed out after 30 minutes without activity" in page


def test_each_request_moves_the_deadline(support, settings):
    settings.STAFF_IDLE_TIMEOUT_MINUTES = 30

    for minutes in (20, 40, 60, 80, 100):
        assert get_at(support, minutes).status_code == 200


def test_organization_users_keep_the_ordinary_session(client, settings):
    settings.STAFF_IDLE_TIMEOUT_MINUTES = 30
    organization = OrganizationFactory(slug="acme")
    with time_machine.travel(START, tick=False):
        sign_in(client, MembershipFactory(organization=organization).user)

    assert get_at(client, 24 * 60, url="/billing/acme/").status_code == 200
