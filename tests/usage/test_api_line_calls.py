"""`GET orgs/{org}/invoices/{number}/lines/{id}/calls`: the calls behind a call overage line."""

import pytest

from tests.billing.support_helpers import overage_month
from tests.factories import OrganizationFactory
from usage.api import api as platform_api
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def month():
    return overage_month(organization=OrganizationFactory(slug="acme"))


@pytest.fixture
def token():
    return service_token_create(name="calling platform", all_organizations=True)[1]


def get(client, token, path, **query):
    return client.get(f"/api/v1/{path}", query, HTTP_AUTHORIZATION=f"Bearer {token}")


def path(month, line=None, number=None, org="acme"):
    line_id = line.pk if line is not None else month.line.pk
    return f"orgs/{org}/invoices/{number or month.invoice.number}/lines/{line_id}/calls"


def test_lists_the_calls_of_the_lines_month_with_its_rate(client, token, month):
    response = get(client, token, path(month))

    assert response.status_code == 200
    body = response.json()
    assert (body["invoice_number"], body["rate_per_second"], body["currency"]) == (
        month.invoice.number,
        "0.004000",
        "USD",
    )
    assert (body["count"], body["page"], body["pages"]) == (4, 1, 1)
    assert [(call["call_id"], call["billable_seconds"]) for call in body["calls"]] == [
        ("acme-call-1", 400),
        ("acme-call-2", 300),
        ("acme-call-3", 30),
        ("acme-call-4", 20),
    ]


def test_filters_and_pages(client, token, month):
    body = get(
        client, token, path(month), direction="outbound", max_seconds=300, page=2, page_size=1
    ).json()

    assert (body["count"], body["pages"]) == (2, 2)
    assert [call["call_id"] for call in body["calls"]] == ["acme-call-4"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page_size": 501}, "page_size"),
        ({"direction": "sideways"}, "direction"),
        ({"min_seconds": -1}, "min_seconds"),
        ({"phone_number": "555"}, "phone_number"),
    ],
)
def test_bad_filters_get_422_naming_the_field(client, token, month, query, field):
    response = get(client, token, path(month), **query)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_another_line_is_not_a_call_line(client, token, month):
    fee = month.invoice.lines.get(kind="subscription")

    response = get(client, token, path(month, line=fee))

    assert (response.status_code, response.json()["code"]) == (422, "not_a_call_line")


@pytest.mark.parametrize(
    ("which", "code"),
    [("invoice", "invoice_not_found"), ("line", "line_not_found"), ("other", "invoice_not_found")],
)
def test_what_is_not_there_gets_404(client, token, month, which, code):
    other = overage_month(organization=OrganizationFactory(slug="globex"))
    url = {
        "invoice": path(month, number="INV-1999-000001"),
        "line": f"orgs/acme/invoices/{month.invoice.number}/lines/999999/calls",
        # globex's invoice, asked for under acme
        "other": path(other, org="acme"),
    }[which]

    response = get(client, token, url)

    assert (response.status_code, response.json()["code"]) == (404, code)


def test_a_token_that_does_not_reach_the_organization_gets_403(client, month):
    other = OrganizationFactory(slug="globex")
    _, scoped = service_token_create(name="globex console", organizations=[other])

    response = get(client, scoped, path(month))

    assert (response.status_code, response.json()["code"]) == (403, "token_out_of_scope")


def test_the_openapi_document_lists_its_refusals():
    operation = platform_api.get_openapi_schema()["paths"][
        "/api/v1/orgs/{org}/invoices/{number}/lines/{line_id}/calls"
    ]["get"]

    assert "`invoice_not_found`" in operation["responses"][404]["description"]
    assert "`not_a_call_line`" in operation["responses"][422]["description"]
