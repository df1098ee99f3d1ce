"""The data export an organization downloads before it leaves: CSVs of its calls, AI
employees, phone numbers and invoices, and every invoice's PDF, in one zip. What the
archive holds and how it reads; `services.organization_export_write` writes it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO

from billing.models import Invoice, Organization
from usage.models import AIEmployee, Call, PhoneNumber

CALLS_PER_CHUNK = 2_000

README = """\
Data export of {organization}, made {exported_at} UTC.

calls.csv         every call: platform call id, AI employee, direction, connect and end
                  times, billable seconds (connect to disconnect, a started second whole)
ai_employees.csv  AI employees, active or deactivated
phone_numbers.csv phone numbers, held or released, with their monthly fee
invoices.csv      finalized invoices: period, dates, amounts and status
invoices/         the PDF of every invoice in invoices.csv, named by its number

Files are UTF-8 CSV with a header row. Times are ISO 8601 in UTC; periods run from their
start up to, not including, their end. Amounts are decimals in the currency named beside
them.
"""


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def _csv_write(archive: zipfile.ZipFile, name: str, header: list[str], rows: Iterable) -> None:
    """Write rows into the archive as they come, so a large table is never held whole.
    Zip64 from the start: the size of a calls table is not known in advance."""
    with io.TextIOWrapper(
        archive.open(name, "w", force_zip64=True), encoding="utf-8", newline=""
    ) as text:
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(map(_spreadsheet_safe, rows))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(row) -> list:
    """A name such as `=HYPERLINK(…)` would run as a formula when the file is opened in a
    spreadsheet: such text is prefixed with an apostrophe. Amounts (`-24.50`) stay numbers."""
    return [
        f"'{cell}"
        if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not _is_number(cell)
        else cell
        for cell in row
    ]


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


CALL_COLUMNS = [
    "platform_call_id",
    "ai_employee",
    "ai_employee_id",
    "direction",
    "connected_at",
    "ended_at",
    "billable_seconds",
]


def _calls(organization: Organization):
    calls = (
        Call.objects.filter(organization=organization)
        .order_by("connected_at", "pk")
        .values_list(
            "platform_call_id",
            "employee__name",
            "employee_id",
            "direction",
            "connected_at",
            "ended_at",
            "billable_seconds",
        )
    )
    for call_id, name, employee_id, direction, connected_at, ended_at, seconds in calls.iterator(
        chunk_size=CALLS_PER_CHUNK
    ):
        yield call_id, name, employee_id, direction, _time(connected_at), _time(ended_at), seconds


EMPLOYEE_COLUMNS = [
    "id",
    "name",
    "cost_center",
    "inbound_capable",
    "active",
    "created_at",
    "deactivated_at",
]


def _employees(organization: Organization):
    for employee in AIEmployee.objects.filter(organization=organization).order_by("pk"):
        yield (
            employee.pk,
            employee.name,
            employee.cost_center,
            employee.inbound_capable,
            employee.is_active,
            _time(employee.created_at),
            _time(employee.deactivated_at),
        )


PHONE_NUMBER_COLUMNS = [
    "number",
    "type",
    "country",
    "region",
    "vanity",
    "monthly_fee",
    "currency",
    "ai_employee_id",
    "ai_employee",
    "provisioned_at",
    "released_at",
]


def _phone_numbers(organization: Organization):
    numbers = PhoneNumber.objects.filter(organization=organization).select_related("employee")
    for number in numbers.order_by("provisioned_at", "pk"):
        yield (
            number.number,
            number.number_type,
            number.country,
            number.region,
            number.is_vanity,
            number.monthly_fee.amount,
            number.monthly_fee.currency,
            number.employee_id,
            number.employee.name if number.employee else "",
            _time(number.provisioned_at),
            _time(number.released_at),
        )


INVOICE_COLUMNS = [
    "number",
    "kind",
    "status",
    "period_start",
    "period_end",
    "issued_at",
    "due_at",
    "paid_at",
    "subtotal",
    "tax",
    "credit_applied",
    "credit_carried",
    "total",
    "currency",
]


def _invoice_row(invoice: Invoice) -> tuple:
    return (
        invoice.number,
        invoice.kind,
        invoice.status,
        _time(invoice.period_start),
        _time(invoice.period_end),
        _time(invoice.issued_at),
        _time(invoice.due_at),
        _time(invoice.paid_at),
        invoice.subtotal.amount,
        invoice.tax_total.amount,
        invoice.credit_applied.amount,
        invoice.credit_carried.amount,
        invoice.total.amount,
        invoice.currency,
    )


def archive_write(
    *,
    organization: Organization,
    out: IO[bytes],
    now: dt.datetime,
    invoice_pdf: Callable[[Invoice], bytes],
) -> None:
    """Write the organization's export, a zip, to the binary file `out`, each invoice's PDF
    as `invoice_pdf` gives it, one at a time."""
    invoices = list(
        Invoice.objects.filter(organization=organization)
        .exclude(status=Invoice.Status.DRAFT)
        .order_by("issued_at", "pk")
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            README.format(
                organization=organization.name,
                exported_at=f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M}",
            ),
        )
        _csv_write(archive, "calls.csv", CALL_COLUMNS, _calls(organization))
        _csv_write(archive, "ai_employees.csv", EMPLOYEE_COLUMNS, _employees(organization))
        _csv_write(archive, "phone_numbers.csv", PHONE_NUMBER_COLUMNS, _phone_numbers(organization))
        _csv_write(archive, "invoices.csv", INVOICE_COLUMNS, map(_invoice_row, invoices))
        for invoice in invoices:
            archive.writestr(f"invoices/{invoice.number}.pdf", invoice_pdf(invoice))
