"""Every page carries a Content-Security-Policy without 'unsafe-inline' and a
Permissions-Policy; the pages' own markup needs nothing the policy refuses."""

import re

import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.models import Plan
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    renewed_invoice,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme(now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    SubscriptionFactory(organization=organization, plan=Plan.objects.get(code="starter-monthly"))
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    return organization


def policy_of(response) -> dict[str, list[str]]:
    directives = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {name: values for name, *values in directives}


def assert_protected(response):
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert "'self'" in policy[directive]
        assert "'unsafe-inline'" not in policy[directive]
    permissions = response["Permissions-Policy"]
    assert "camera=()" in permissions
    assert "microphone=()" in permissions
    assert "geolocation=()" in permissions
    assert 'payment=(self "https://js.stripe.com")' in permissions


def assert_no_inline_code(html: str):
    """Nothing the policy would refuse: no style attribute, no event handler attribute, no
    script without a source (JSON data blocks are not run)."""
    assert " style=" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)
    for script in re.findall(r"<script[^>]*>", html):
        assert "src=" in script or 'type="application/json"' in script, script


def test_the_sign_in_page(client):
    response = client.get(reverse("login"))

    assert_protected(response)
    assert_no_inline_code(response.content.decode())


@pytest.mark.parametrize(
    "name",
    [
        "billing:overview",
        "billing:plans",
        "billing:invoices",
        "usage:dashboard",
        "usage:employees",
        "usage:phone_numbers",
        "payments:methods",
    ],
)
def test_the_billing_pages(client, acme, name):
    sign_in(client, UserFactory(username="admin"))

    response = client.get(reverse(name, args=[acme.slug]))

    assert response.status_code == 200
    assert_protected(response)
    assert_no_inline_code(response.content.decode())


def test_the_invoice_page_styles_the_document_with_the_requests_nonce(client, now):
    organization = OrganizationFactory(slug="acme")
    invoice = renewed_invoice(organization=organization)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    sign_in(client, UserFactory(username="admin"))

    response = client.get(reverse("billing:invoice", args=[organization.slug, invoice.number]))

    nonce = re.search(r'<style nonce="([^"]+)">', response.content.decode())[1]
    assert f"'nonce-{nonce}'" in policy_of(response)["style-src"]
    assert_no_inline_code(response.content.decode())


def test_a_nonce_is_new_for_every_response(client, now):
    organization = OrganizationFactory(slug="acme")
    invoice = renewed_invoice(organization=organization)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    sign_in(client, UserFactory(username="admin"))
    url = reverse("billing:invoice", args=[organization.slug, invoice.number])

    first, second = client.get(url), client.get(url)

    assert policy_of(first)["style-src"] != policy_of(second)["style-src"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/billing/subscription/",
        "/admin/usage/aiemployee/",
        "/admin/usage/call/",
        "/admin/usage/servicetoken/add/",
    ],
)
def test_the_admin(staff_client, acme, url):
    response = staff_client.get(url)

    assert response.status_code == 200
    assert_protected(response)
    assert_no_inline_code(response.content.decode())


def test_the_api_answers_carry_the_headers_too(client):
    response = client.get("/api/v1/orgs/acme/usage")

    assert response.status_code == 401
    assert_protected(response)


def test_the_api_answers_carry_the_pages_policy_and_a_report_only_one_when_set(client, settings):
    # Given a report-only policy besides the enforced one
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": ["'none'"], "report-uri": "/csp-reports/"}
    }

    # When a page and the API answer
    page = client.get(reverse("login"))
    api = client.get("/api/v1/orgs/acme/usage")

    # Then the API's answer carries the page's policies (a page without a nonce)
    assert policy_of(api) == policy_of(page)
    assert api["Content-Security-Policy-Report-Only"] == page["Content-Security-Policy-Report-Only"]
    assert "report-uri /csp-reports/" in api["Content-Security-Policy-Report-Only"]
