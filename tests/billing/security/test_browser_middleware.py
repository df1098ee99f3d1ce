"""The browser's middleware runs for every page and never for the platform API: an API
answer carries no cookie and no framing header, and the pages keep their CSRF check and
their framing header."""

import pytest
from django.test import Client

from tests.factories import EmployeeFactory, SubscriptionFactory
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db


def test_an_api_answer_goes_without_the_browsers_middleware(client, now):
    employee = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)
    _, token = service_token_create(name="platform", all_organizations=True)

    response = client.post(
        f"/api/v1/orgs/{employee.organization.slug}/calls/authorize",
        {"employee_id": employee.pk},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert not response.cookies
    assert not hasattr(response.wsgi_request, "session")


def test_a_page_keeps_its_framing_header_session_and_csrf_check():
    browser = Client(enforce_csrf_checks=True)

    page = browser.get("/accounts/login/")
    refused = browser.post("/accounts/login/", {"username": "x", "password": "y"})

    assert page["X-Frame-Options"] == "DENY"
    assert hasattr(page.wsgi_request, "session")
    assert refused.status_code == 403  # no CSRF token
