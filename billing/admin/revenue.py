"""Revenue metrics for staff, under *Invoices*: a month's figures beside their definitions,
twelve months charted, and the organizations behind each figure (a page, or CSV)."""

import csv
import datetime as dt
from decimal import Decimal

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from djmoney.money import Money

from billing.accounts import selectors as account_selectors
from billing.lifecycle import revenue
from usage import charts


class RevenueViews:
    """The revenue pages, added to a model admin's URLs by `revenue_urls`."""

    def revenue_urls(self):
        return [
            path(
                "revenue/",
                self.admin_site.admin_view(self.revenue_view),
                name="billing_revenue_metrics",
            ),
            path(
                "revenue/organizations/",
                self.admin_site.admin_view(self.revenue_organizations_view),
                name="billing_revenue_organizations",
            ),
        ]

    def revenue_view(self, request):
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        now = timezone.now()
        form = RevenueMonthForm(request.GET or None)
        month = (
            form.cleaned_data["month"]
            if form.is_valid() and form.cleaned_data["month"]
            else now.date()
        )
        report = revenue.revenue_report(month=month, now=now)
        return TemplateResponse(
            request,
            "admin/billing/revenue.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Revenue, {report.start:%B %Y}",
                "form": form,
                "report": report,
                "definitions": revenue.REVENUE_DEFINITIONS,
                "month_note": revenue.REVENUE_MONTH_NOTE,
                "previous": (report.start - dt.timedelta(days=1)).strftime("%Y-%m"),
                "trends": [
                    (currency, _trend_chart(points, "mrr"), _trend_chart(points, "usage_run_rate"))
                    for currency, points in revenue.revenue_trend(month=month, now=now).items()
                ],
            },
        )

    def revenue_organizations_view(self, request):
        """The organizations behind one figure of a month (`?figure=`), or every
        organization's part of the month's figures as CSV (`?format=csv`). A month or figure
        that is not one is refused, naming it."""
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        now = timezone.now()
        form = RevenueOrganizationsForm(request.GET)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/billing/revenue_organizations.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": "Revenue: the organizations behind a figure",
                    "form": form,
                },
                status=400,
            )
        month = form.cleaned_data["month"] or now.date()
        if form.cleaned_data["format"] == "csv":
            return _revenue_csv(revenue.revenue_organizations(month=month, now=now), month)
        figure = form.cleaned_data["figure"] or "mrr"
        columns = REVENUE_COLUMNS[figure]
        rows = revenue.revenue_organizations(month=month, now=now, figure=figure)
        return TemplateResponse(
            request,
            "admin/billing/revenue_organizations.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": (
                    f"{revenue.REVENUE_DEFINITIONS[figure][0]}, {month:%B %Y}: "
                    "the organizations behind it"
                ),
                "form": form,
                "month": f"{month:%Y-%m}",
                "definition": revenue.REVENUE_DEFINITIONS[figure][1],
                "headings": [heading for heading, _ in columns],
                "rows": [
                    (row, [getattr(row, attribute) for _, attribute in columns]) for row in rows
                ],
            },
        )


def _trend_chart(points: list[revenue.TrendPoint], figure: str) -> charts.Chart:
    """A column per month of one figure, in cents; labelled in the currency."""
    currency = str(getattr(points[0], figure).currency)
    return charts.column_chart(
        [(f"{point.month:%b %y}", int(getattr(point, figure).amount * 100)) for point in points],
        value_label=lambda cents: f"{Money(Decimal(cents) / 100, currency)}",
        tick_unit=100,
        tick_suffix=f" {currency}",
    )


class RevenueMonthForm(forms.Form):
    month = forms.DateField(
        required=False,
        input_formats=["%Y-%m"],
        help_text="YYYY-MM; this month unless given.",
        error_messages={"invalid": "Give the month as YYYY-MM, e.g. 2026-03."},
    )


class RevenueOrganizationsForm(RevenueMonthForm):
    figure = forms.ChoiceField(
        required=False,
        choices=[
            (name, revenue.REVENUE_DEFINITIONS[name][0]) for name in revenue.REVENUE_DRILL_DOWNS
        ],
        error_messages={"invalid_choice": "%(value)s is not a figure of the revenue page."},
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "page"), ("csv", "CSV")],
        error_messages={"invalid_choice": "%(value)s is not a format: leave it out, or csv."},
    )


_MRR_COLUMNS = [
    ("MRR at the start", "mrr_start"),
    ("MRR at the end", "mrr"),
    ("Movement", "movement"),
]
# What each figure's organizations show: the parts that make up the figure.
REVENUE_COLUMNS = {
    **{name: _MRR_COLUMNS for name in revenue.REVENUE_DRILL_DOWNS},
    "usage_run_rate": [("Usage run-rate", "usage_run_rate")],
    "dunning_recovery": [
        ("Entered dunning", "dunning_entered"),
        ("Recovered by the month's end", "dunning_recovered"),
    ],
    "invoiced": [("Invoiced", "invoiced")],
    "collected": [("Collected, less refunds", "collected")],
    "overdue": [("Overdue", "overdue"), ("Invoices", "overdue_invoices")],
}
REVENUE_CSV_FIELDS = [
    "currency",
    "mrr_start",
    "mrr",
    "movement",
    "usage_run_rate",
    "invoiced",
    "collected",
    "overdue",
    "overdue_invoices",
    "dunning_entered",
    "dunning_recovered",
]


def _revenue_csv(rows: list[revenue.OrganizationRevenue], month: dt.date) -> HttpResponse:
    """Every organization's part of the month's figures, amounts without their currency sign
    (the currency is a column of its own)."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="revenue-{month:%Y-%m}.csv"'
    writer = csv.writer(response)
    writer.writerow(["organization", *REVENUE_CSV_FIELDS])
    for row in rows:
        values = (getattr(row, field) for field in REVENUE_CSV_FIELDS)
        writer.writerow(
            [row.name, *(value.amount if isinstance(value, Money) else value for value in values)]
        )
    return response
