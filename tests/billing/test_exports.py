import csv
import datetime as dt
import io
import zipfile
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.invoicing.services import invoice_pdf_if_needed
from billing.lifecycle.services import organization_export_write
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    record_call,
    renewed_invoice,
)
from tests.helpers import people_of, signed_in
from usage import services as usage_services
from usage.models import Call

pytestmark = pytest.mark.django_db

EXPORTED_AT = dt.datetime(2026, 3, 20, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Rendered PDFs are stored on the invoice: keep them out of the project's var/media."""
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme(now):
    """Acme Dental subscribed on 16 Feb 2026 and renewed on 16 Mar 2026 (invoices 1 and 2),
    with calls by Ava, six numbers, an admin and a member; Rival Corp has its own admin,
    AI employee, call and invoice."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    renewed_invoice(organization=organization)
    rival = OrganizationFactory(name="Rival Corp", slug="rival")
    SubscriptionFactory(organization=rival, plan=PlanFactory(), now=now)
    record_call(
        employee=EmployeeFactory(organization=rival, name="Rex"),
        seconds=90,
        connected_at=now - dt.timedelta(hours=1),
        call_id="rival-call",
    )
    people_of(organization, rival=rival)
    return organization


def export_of(organization):
    out = io.BytesIO()
    organization_export_write(organization=organization, out=out, now=EXPORTED_AT)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def rows(archive, name):
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


class TestExport:
    def test_the_zip_holds_a_readme_four_tables_and_one_pdf_per_invoice(self, acme):
        archive = export_of(acme)

        assert sorted(archive.namelist()) == [
            "README.txt",
            "ai_employees.csv",
            "calls.csv",
            "invoices.csv",
            "invoices/INV-2026-000001.pdf",
            "invoices/INV-2026-000002.pdf",
            "phone_numbers.csv",
        ]
        assert archive.testzip() is None
        assert archive.read("invoices/INV-2026-000002.pdf").startswith(b"%PDF")
        readme = archive.read("README.txt").decode()
        assert "Data export of Acme Dental, made 2026-03-20 09:30 UTC." in readme
        assert "calls.csv" in readme
        assert "invoices/" in readme

    def test_calls_list_every_call_of_the_organization_with_utc_times(self, acme):
        calls = rows(export_of(acme), "calls.csv")

        ava = acme.employees.get()
        assert len(calls) == Call.objects.filter(organization=acme).count() == 9
        assert calls[0] == {
            "platform_call_id": Call.objects.earliest("connected_at").platform_call_id,
            "ai_employee": "Ava",
            "ai_employee_id": str(ava.pk),
            "direction": "outbound",
            "connected_at": "2026-02-17T00:00:00+00:00",
            "ended_at": "2026-02-17T06:00:00+00:00",
            "billable_seconds": "21600",
        }
        assert sum(int(call["billable_seconds"]) for call in calls) == 182_400
        assert "rival-call" not in {call["platform_call_id"] for call in calls}

    def test_the_export_runs_the_same_queries_however_many_calls(self, acme, now):
        # Given the PDFs were rendered once already
        export_of(acme)
        with CaptureQueriesContext(connection) as before:
            export_of(acme)

        # When Ava makes 50 more calls
        ava = acme.employees.get()
        for n in range(50):
            record_call(employee=ava, seconds=60, connected_at=now - dt.timedelta(minutes=n + 1))
        with CaptureQueriesContext(connection) as after:
            archive = export_of(acme)

        # Then they are exported without a query more
        assert len(rows(archive, "calls.csv")) == 59
        assert len(after) == len(before)

    def test_ai_employees_and_phone_numbers_are_listed(self, acme, now):
        # Given one of Acme's numbers was released
        released = acme.phone_numbers.get(number__startswith="+1212")
        usage_services.phone_number_release(phone_number=released, now=now)

        archive = export_of(acme)

        assert [
            (e["name"], e["cost_center"], e["active"]) for e in rows(archive, "ai_employees.csv")
        ] == [("Ava", "Support", "True")]
        numbers = {number["number"]: number for number in rows(archive, "phone_numbers.csv")}
        assert len(numbers) == 6
        vanity = next(number for number in numbers.values() if number["vanity"] == "True")
        assert vanity["number"].startswith("+1800")
        assert (vanity["type"], vanity["country"], vanity["monthly_fee"], vanity["currency"]) == (
            "local",
            "US",
            "6.75",
            "USD",
        )
        assert vanity["ai_employee"] == "Ava"
        assert vanity["provisioned_at"] == "2026-02-16T00:00:00+00:00"
        assert vanity["released_at"] == ""
        assert numbers[released.number]["released_at"] == "2026-03-16T10:00:00+00:00"
        assert numbers[released.number]["ai_employee"] == ""

    def test_a_name_that_looks_like_a_formula_cannot_run_in_a_spreadsheet(self, acme, now):
        # Given an AI employee named like a spreadsheet formula
        acme.employees.update(name='=HYPERLINK("http://evil.example")')

        archive = export_of(acme)

        [employee] = rows(archive, "ai_employees.csv")
        assert employee["name"] == '\'=HYPERLINK("http://evil.example")'

    def test_invoices_show_amounts_as_exact_decimals(self, acme):
        invoices = rows(export_of(acme), "invoices.csv")

        assert [invoice["number"] for invoice in invoices] == ["INV-2026-000001", "INV-2026-000002"]
        renewal = invoices[1]
        stored = acme.invoices.get(number="INV-2026-000002")
        assert renewal == {
            "number": "INV-2026-000002",
            "kind": "subscription",
            "status": "open",
            "period_start": "2026-03-16T00:00:00+00:00",
            "period_end": "2026-04-16T00:00:00+00:00",
            "issued_at": "2026-03-16T10:00:00+00:00",
            "due_at": stored.due_at.isoformat(),
            "paid_at": "",
            "subtotal": str(stored.subtotal.amount),
            "tax": str(stored.tax_total.amount),
            "credit_applied": "25.00",
            "credit_carried": "0.00",
            "total": "189.05",
            "currency": "USD",
        }

    def test_a_stored_invoice_pdf_is_reused_not_rendered_again(self, acme):
        invoice = acme.invoices.get(number="INV-2026-000001")
        stored = invoice_pdf_if_needed(invoice=invoice)

        with mock.patch(
            "billing.invoicing.selectors.invoice_pdf_render", return_value=b"%PDF-fresh"
        ) as render:
            archive = export_of(acme)

        assert archive.read("invoices/INV-2026-000001.pdf") == stored
        assert archive.read("invoices/INV-2026-000002.pdf") == b"%PDF-fresh"
        assert render.call_count == 1

    def test_an_organization_without_any_usage_gets_headers_only(self, now):
        organization = SubscriptionFactory(now=now).organization

        archive = export_of(organization)

        assert archive.read("calls.csv").decode().splitlines() == [
            "platform_call_id,ai_employee,ai_employee_id,direction,connected_at,ended_at,"
            "billable_seconds"
        ]
        assert len(rows(archive, "invoices.csv")) == 1


# --- the download -------------------------------------------------------------------------


def export_url(organization):
    return reverse("billing:export", args=[organization.slug])


@pytest.mark.parametrize("username", ["admin", "support"])
def test_an_administrator_or_support_downloads_the_zip(client, acme, username):
    response = signed_in(client, username).get(export_url(acme))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="acme-export-2026-03-16.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len(rows(archive, "calls.csv")) == 9
    assert [e["name"] for e in rows(archive, "ai_employees.csv")] == ["Ava"]
    assert len(rows(archive, "phone_numbers.csv")) == 6
    assert len(rows(archive, "invoices.csv")) == 2
    pdfs = [name for name in archive.namelist() if name.endswith(".pdf")]
    assert pdfs == ["invoices/INV-2026-000001.pdf", "invoices/INV-2026-000002.pdf"]
    assert b"Rex" not in archive.read("ai_employees.csv")


def test_a_member_is_told_to_ask_an_administrator(client, acme):
    response = signed_in(client, "member").get(export_url(acme))

    assert response.status_code == 403
    assert "Only administrators can see this page" in response.content.decode()


def test_an_administrator_of_another_organization_gets_404(client, acme):
    response = signed_in(client, "rival_admin").get(export_url(acme))

    assert response.status_code == 404
    assert b"Acme" not in response.content


def test_anonymous_visitors_are_sent_to_sign_in(client, acme):
    url = export_url(acme)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_the_export_is_downloaded_not_posted(client, acme):
    response = signed_in(client, "admin").post(export_url(acme))

    assert response.status_code == 405
