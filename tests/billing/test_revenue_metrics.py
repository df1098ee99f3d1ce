"""Revenue metrics: every figure of March 2026 recomputed by hand from a seeded history of
ten organizations, to the cent; the definitions printed beside the figures on the staff
page; a wrong month named; the page's queries constant."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_q.models import Schedule
from djmoney.money import Money

from billing.invoicing import services as invoicing_services
from billing.invoicing.pricing import LineDraft
from billing.lifecycle import renewals
from billing.lifecycle import revenue as selectors
from billing.lifecycle import services as lifecycle_services
from billing.models import Organization, RevenueSnapshot
from billing.subscriptions import periods
from billing.subscriptions import services as subscription_services
from payments import services as payment_services
from tests.factories import (
    CouponFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    card,
    declined_invoice,
    sign_in,
)

pytestmark = pytest.mark.django_db


def day(month, day_, hour=10):
    return dt.datetime(2026, month, day_, hour, tzinfo=dt.UTC)


MARCH = dt.date(2026, 3, 1)
APRIL_1 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def plan(price, *, interval="month", currency="USD", tier="professional", trial_days=0):
    return PlanFactory(
        price=Money(price, currency),
        interval=interval,
        tier=tier,
        trial_days=trial_days,
        overage_rate_per_second=Money("0.004", currency),
        overage_rate_per_gb=Money("0.25", currency),
    )


def subscribe(name, price, start, **plan_terms):
    currency = plan_terms.get("currency", "USD")
    organization = OrganizationFactory(name=name, currency=currency)
    return SubscriptionFactory(
        organization=organization,
        plan=plan(price, **plan_terms),
        start=start,
        now=start,
        trial=bool(plan_terms.get("trial_days")),
    )


def set_status(subscription, status, at):
    subscription_services.subscription_set_status(
        subscription=subscription, status=status, reason="test", now=at
    )


@pytest.fixture
def history(settings):
    """March 2026, organization by organization (USD unless said; no tax):

    - Acme: $100 a month since 10 Feb, a forever $15 coupon since 12 Feb: $85 throughout;
      its first invoice ($100) is declined on 15 Mar (dunning) and paid by card on 22 Mar.
    - Bolt: $1,200 a year since 5 Jan ($100 a month); a forever 10% coupon on 10 Mar: $90.
      Usage invoiced in arrears: $15.40 on 5 Feb (call overage $12.40, a number $3.00),
      $24.25 on 5 Mar (call overage $20.00, storage $1.25, a number $3.00).
    - Cargo: subscribes at $50 on 5 Mar, pays by card that day; $20 refunded on 20 Mar.
    - Dyno: $200 since 1 Feb, upgraded to $300 on 12 Mar.
    - Echo: $80 since 3 Feb, cancelled on 20 Feb: ends with its period, on 3 Mar.
    - Golf: $40 since 20 Feb, its invoice declined on 18 Mar: past due, still counted.
    - Hotel: $60 since 15 Feb, past due on 20 Mar, suspended on 25 Mar.
    - Juno: $70 from 1 Jan, cancelled outright on 20 Feb; subscribes again on 8 Mar.
    - Fox: starts a 14-day trial on 20 Mar.
    - Ivy: €30 a month since 2 Feb.
    """
    settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY = False
    acme = subscribe("Acme", "100.00", day(2, 10))
    invoicing_services.discount_apply(
        organization=acme.organization,
        coupon=CouponFactory(percent_off=None, amount_off=Money("15", "USD"), duration="forever"),
        now=day(2, 12),
    )
    bolt = subscribe("Bolt", "1200.00", day(1, 5), interval="year")
    usage_invoice(bolt, day(1, 5), day(2, 5), {"overage_calls": "12.40", "phone_number": "3.00"})
    usage_invoice(
        bolt,
        day(2, 5),
        day(3, 5),
        {"overage_calls": "20.00", "overage_storage": "1.25", "phone_number": "3.00"},
    )
    invoicing_services.discount_apply(
        organization=bolt.organization,
        coupon=CouponFactory(percent_off=Decimal("10"), duration="forever"),
        now=day(3, 10),
    )
    cargo = subscribe("Cargo", "50.00", day(3, 5))
    card(cargo.organization, now=day(3, 5))
    paid = payment_services.invoice_collect(
        invoice=cargo.organization.invoices.get(), now=day(3, 5)
    )
    payment_services.payment_refund(
        attempt=paid, amount=Money("20.00", "USD"), reason="Outage", now=day(3, 20)
    )
    dyno = subscribe("Dyno", "200.00", day(2, 1))
    lifecycle_services.subscription_plan_change(
        subscription=dyno, plan=plan("300.00", tier="business"), now=day(3, 12)
    )
    echo = subscribe("Echo", "80.00", day(2, 3))
    subscription_services.subscription_cancel(subscription=echo, reason="Budget", now=day(2, 20))
    renewals.subscription_renew_if_needed(subscription_id=echo.pk, now=day(3, 3, 12))
    golf = subscribe("Golf", "40.00", day(2, 20))
    declined_invoice(golf.organization, now=day(3, 18))
    hotel = subscribe("Hotel", "60.00", day(2, 15))
    set_status(hotel, "past_due", day(3, 20))
    set_status(hotel, "suspended", day(3, 25))
    juno = subscribe("Juno", "70.00", day(1, 1))
    set_status(juno, "canceled", day(2, 20))
    SubscriptionFactory(
        organization=juno.organization, plan=juno.plan, start=day(3, 8), now=day(3, 8)
    )
    subscribe("Fox", "90.00", day(3, 20), trial_days=14)
    ivy = subscribe("Ivy", "30.00", day(2, 2), currency="EUR")
    declined = declined_invoice(acme.organization, now=day(3, 15))
    card(acme.organization, make_default=True, now=day(3, 22))
    payment_services.invoice_collect(invoice=declined, now=day(3, 22))
    return {"echo": echo, "ivy": ivy}


def usage_invoice(subscription, start, end, charges):
    """An invoice of usage in arrears for [start, end), issued at `end`."""
    lines = [
        LineDraft(kind=kind, description=kind, unit_price=Money(amount, "USD"))
        for kind, amount in charges.items()
    ]
    invoicing_services.invoice_issue(
        organization=subscription.organization,
        subscription=subscription,
        kind="usage",
        period=periods.Period(start, end),
        lines=lines,
        now=end,
    )


def test_every_figure_agrees_with_the_hand_computed_history(history):
    report = selectors.revenue_report(month=MARCH, now=APRIL_1 + dt.timedelta(hours=1))

    assert (report.start, report.end) == (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), APRIL_1)
    assert report.version == selectors.REVENUE_DEFINITIONS_VERSION
    [euros, dollars] = report.figures
    usd = lambda amount: Money(amount, "USD")  # noqa: E731
    # 1 Mar: Acme 85 + Bolt 100 + Dyno 200 + Echo 80 + Golf 40 + Hotel 60.
    assert dollars.mrr_start == usd("565.00")
    # 1 Apr: Acme 85 + Bolt 90 + Cargo 50 + Dyno 300 + Golf 40 + Juno 70.
    assert dollars.mrr == usd("635.00")
    assert dollars.arr == usd("7620.00")
    assert dollars.new == usd("50.00")  # Cargo
    assert dollars.reactivation == usd("70.00")  # Juno
    assert dollars.expansion == usd("100.00")  # Dyno
    assert dollars.contraction == usd("10.00")  # Bolt's coupon
    assert dollars.churned == usd("140.00")  # Echo ended, Hotel suspended
    assert (
        dollars.net_new
        == usd("70.00")
        == (
            dollars.new
            + dollars.reactivation
            + dollars.expansion
            - dollars.contraction
            - dollars.churned
        )
    )
    assert dollars.paying_accounts == 6
    assert dollars.arpa == usd("105.83")  # 635 ÷ 6
    # Cargo's and Juno's first invoices, Bolt's usage of February.
    assert dollars.invoiced == usd("144.25")
    assert dollars.collected == usd("130.00")  # Cargo's $50 less the $20 refund, Acme's $100
    # Unpaid and due by 1 Apr: Bolt 1,200, Dyno 200, Echo 80, Golf 40, Hotel 60, Juno 70
    # twice, Bolt's usage 15.40 and 24.25.
    assert (dollars.overdue, dollars.overdue_invoices) == (usd("1759.65"), 9)
    # January to March: (15.40 + 24.25) ÷ 3.
    assert dollars.usage_run_rate == usd("13.22")
    # Echo and Hotel of the six paying on 1 Mar.
    assert (dollars.accounts_churned, dollars.accounts_start) == (2, 6)
    assert dollars.logo_churn == Decimal("33.33")
    assert dollars.revenue_churn == Decimal("26.55")  # (140 + 10) ÷ 565
    assert dollars.net_revenue_retention == Decimal("91.15")  # (565 + 100 − 10 − 140) ÷ 565
    # Acme's $100 and Golf's $40 entered dunning; Acme's was recovered.
    assert (dollars.dunning_entered, dollars.dunning_recovered) == (usd("140.00"), usd("100.00"))
    assert dollars.dunning_recovery == Decimal("71.43")
    assert (euros.currency, euros.mrr_start, euros.mrr) == (
        "EUR",
        Money("30.00", "EUR"),
        Money("30.00", "EUR"),
    )
    assert (euros.new, euros.churned, euros.arpa) == (
        Money(0, "EUR"),
        Money(0, "EUR"),
        Money("30.00", "EUR"),
    )
    assert (euros.logo_churn, euros.revenue_churn, euros.net_revenue_retention) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("100.00"),
    )
    assert (euros.usage_run_rate, euros.dunning_recovery) == (Money(0, "EUR"), None)


def test_mrr_is_read_at_any_instant_from_the_history(history):
    at_the_start = selectors.mrr_by_organization(at=day(2, 25))
    echo = history["echo"].organization_id

    assert at_the_start[echo] == ("USD", Decimal("80.00"))
    assert echo not in selectors.mrr_by_organization(at=day(3, 4))


# --- the page ------------------------------------------------------------------------------

URL = reverse("admin:billing_revenue_metrics")


def test_the_page_prints_each_definition_beside_its_figure(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    page = client.get(URL, {"month": "2026-03"}).content.decode()

    for name, rule in selectors.REVENUE_DEFINITIONS.values():
        assert name in page
        assert rule.replace("'", "&#x27;") in page
    assert "$635.00" in page and "€30.00" in page
    assert "$13.22" in page and "91.15%" in page and "71.43% ($100.00 of $140.00)" in page
    assert f"Definitions version {selectors.REVENUE_DEFINITIONS_VERSION}" in page


def test_a_wrong_month_is_named_and_this_month_is_shown(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    response = client.get(URL, {"month": "March"})

    assert response.status_code == 200
    assert "Month: Give the month as YYYY-MM, e.g. 2026-03." in response.content.decode()


@pytest.mark.parametrize("roles", [[], ["Catalog"]])
def test_staff_who_do_not_read_billing_are_refused(client, roles):
    sign_in(client, StaffFactory(username="other", roles=roles))

    assert client.get(URL).status_code == 403


@pytest.mark.parametrize(
    ("url", "query"),
    [
        (URL, {"month": "2026-03"}),
        (reverse("admin:billing_revenue_organizations"), {"month": "2026-03", "figure": "net_new"}),
    ],
    ids=["figures", "organizations behind a figure"],
)
def test_the_page_runs_the_same_queries_however_many_organizations(client, now, url, query):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))
    subscribe("First", "10.00", day(3, 2))
    client.get(url, query)

    with CaptureQueriesContext(connection) as few:
        client.get(url, query)
    for n in range(10):
        subscribe(f"Org {n}", f"{10 + n}.00", day(3, 2 + n))
    with CaptureQueriesContext(connection) as many:
        response = client.get(url, query)

    assert response.status_code == 200
    assert len(many) == len(few)


# --- the daily snapshots -------------------------------------------------------------------


def test_the_daily_snapshot_is_written_once_a_day_with_its_version(history):
    taken = APRIL_1 - dt.timedelta(hours=1)

    written = lifecycle_services.revenue_snapshot_if_needed(now=taken)
    again = lifecycle_services.revenue_snapshot_if_needed(now=taken + dt.timedelta(minutes=30))

    assert (written, again) == (2, 0)
    snapshots = {snapshot.currency: snapshot for snapshot in RevenueSnapshot.objects.all()}
    dollars = snapshots["USD"]
    assert (dollars.day, dollars.definitions_version) == (
        dt.date(2026, 3, 31),
        selectors.REVENUE_DEFINITIONS_VERSION,
    )
    assert (dollars.mrr, dollars.usage_run_rate) == (Decimal("635.00"), Decimal("13.22"))
    assert dollars.figures["net_revenue_retention"] == "91.15"
    assert snapshots["EUR"].mrr == Decimal("30.00")


def test_the_snapshot_job_runs_daily():
    schedule = Schedule.objects.get(func="billing.tasks.revenue_snapshot")

    assert (schedule.schedule_type, schedule.repeats) == (Schedule.DAILY, -1)


def test_the_page_charts_twelve_months_from_the_snapshots_or_computed(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))
    lifecycle_services.revenue_snapshot_if_needed(now=day(2, 27))
    # A snapshot keeps what was read then, whatever a recomputation would say now.
    RevenueSnapshot.objects.filter(currency="USD").update(mrr=Decimal("999.00"))

    page = client.get(URL, {"month": "2026-03"}).content.decode()

    assert "USD: the last 12 months" in page and "EUR: the last 12 months" in page
    assert "<title>Feb 26: $999.00</title>" in page  # the snapshot
    assert "<title>Mar 26: $635.00</title>" in page  # computed: no snapshot in March
    assert "<title>Mar 26: $13.22</title>" in page  # the usage run-rate
    assert "<title>Jan 26: $170.00</title>" in page  # Bolt $1,200 a year ÷ 12, Juno $70
    assert "<script" not in page.split("revenue-month")[1]


# --- drill-down and CSV --------------------------------------------------------------------

ORGANIZATIONS_URL = reverse("admin:billing_revenue_organizations")


def drill_down(client, figure, month="2026-03"):
    response = client.get(ORGANIZATIONS_URL, {"month": month, "figure": figure})
    assert response.status_code == 200
    return [row for row, _ in response.context["rows"]]


def names(rows):
    return [row.name for row in rows]


def total(rows, attribute):
    return sum((getattr(row, attribute) for row in rows), Money(0, "USD"))


def test_each_figure_lists_the_organizations_behind_it(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    revenue_page = client.get(URL, {"month": "2026-03"}).content.decode()

    for figure in selectors.REVENUE_DRILL_DOWNS:
        assert f"{ORGANIZATIONS_URL}?month=2026-03&amp;figure={figure}" in revenue_page
    assert names(drill_down(client, "churned")) == ["Echo", "Hotel"]
    assert names(drill_down(client, "new")) == ["Cargo"]
    assert names(drill_down(client, "reactivation")) == ["Juno"]
    assert names(drill_down(client, "revenue_churn")) == ["Bolt", "Echo", "Hotel"]
    assert names(drill_down(client, "dunning_recovery")) == ["Acme", "Golf"]
    assert names(drill_down(client, "collected")) == ["Acme", "Cargo"]
    assert names(drill_down(client, "usage_run_rate")) == ["Bolt"]
    # By currency, then name.
    assert names(drill_down(client, "arpa")) == [
        "Ivy",
        "Acme",
        "Bolt",
        "Cargo",
        "Dyno",
        "Golf",
        "Juno",
    ]


def test_the_organizations_behind_each_figure_add_up_to_it(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))
    [_, dollars] = selectors.revenue_report(
        month=MARCH, now=APRIL_1 + dt.timedelta(hours=1)
    ).figures

    def usd_rows(figure):
        return [row for row in drill_down(client, figure) if row.currency == "USD"]

    assert total(usd_rows("mrr"), "mrr") == dollars.mrr
    assert total(usd_rows("arr"), "mrr") * 12 == dollars.arr
    assert round(total(usd_rows("arpa"), "mrr") / len(usd_rows("arpa")), 2) == dollars.arpa
    assert total(usd_rows("usage_run_rate"), "usage_run_rate") == dollars.usage_run_rate
    assert total(usd_rows("new"), "mrr") == dollars.new
    assert total(usd_rows("reactivation"), "mrr") == dollars.reactivation
    for figure in ("expansion", "net_new"):
        rows = usd_rows(figure)
        assert total(rows, "mrr") - total(rows, "mrr_start") == getattr(dollars, figure)
    contracted = usd_rows("contraction")
    assert total(contracted, "mrr_start") - total(contracted, "mrr") == dollars.contraction
    assert total(usd_rows("churned"), "mrr_start") == dollars.churned
    # Logo churn and net revenue retention list those paying on 1 March; the churned marked.
    cohort = usd_rows("logo_churn")
    assert len(cohort) == dollars.accounts_start
    assert [row.movement for row in cohort].count("churned") == dollars.accounts_churned
    assert names(usd_rows("net_revenue_retention")) == names(cohort)
    kept = total(cohort, "mrr") / total(cohort, "mrr_start").amount * 100
    assert round(kept.amount, 2) == dollars.net_revenue_retention
    lost = usd_rows("revenue_churn")
    assert total(lost, "mrr_start") - total(lost, "mrr") == dollars.churned + dollars.contraction
    dunning = usd_rows("dunning_recovery")
    assert total(dunning, "dunning_entered") == dollars.dunning_entered
    assert total(dunning, "dunning_recovered") == dollars.dunning_recovered
    assert total(usd_rows("invoiced"), "invoiced") == dollars.invoiced
    assert total(usd_rows("collected"), "collected") == dollars.collected
    overdue = usd_rows("overdue")
    assert total(overdue, "overdue") == dollars.overdue
    assert sum(row.overdue_invoices for row in overdue) == dollars.overdue_invoices


def test_a_figures_organizations_show_its_parts_and_link_to_their_360(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    page = client.get(ORGANIZATIONS_URL, {"month": "2026-03", "figure": "dunning_recovery"})

    html = page.content.decode()
    assert "<th>Entered dunning</th><th>Recovered by the month&#x27;s end</th>" in html
    assert "<td>$100.00</td><td>$100.00</td>" in html  # Acme: entered and recovered
    assert "<td>$40.00</td><td>—</td>" in html  # Golf: still in dunning
    acme = Organization.objects.get(name="Acme")
    assert reverse("admin:billing_organization_360", args=[acme.pk]) in html


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"month": "March", "figure": "mrr"}, "Month: Give the month as YYYY-MM, e.g. 2026-03."),
        (
            {"month": "2026-03", "figure": "profit"},
            "Figure: profit is not a figure of the revenue page.",
        ),
        ({"month": "2026-13", "format": "csv"}, "Month: Give the month as YYYY-MM, e.g. 2026-03."),
        ({"format": "xlsx"}, "Format: xlsx is not a format: leave it out, or csv."),
    ],
)
def test_a_wrong_month_figure_or_format_is_refused_naming_it(client, history, query, named):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    response = client.get(ORGANIZATIONS_URL, query)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert named in response.content.decode()
    assert "revenue-organizations" not in response.content.decode()


def test_the_month_downloads_as_csv_per_organization(client, history):
    sign_in(client, StaffFactory(username="fiona", roles=["Finance"]))

    response = client.get(ORGANIZATIONS_URL, {"month": "2026-03", "format": "csv"})

    assert response["Content-Disposition"] == 'attachment; filename="revenue-2026-03.csv"'
    lines = response.content.decode().splitlines()
    assert lines[0] == (
        "organization,currency,mrr_start,mrr,movement,usage_run_rate,invoiced,collected,"
        "overdue,overdue_invoices,dunning_entered,dunning_recovered"
    )
    assert "Ivy,EUR,30.00,30.00,,0.00,0.00,0.00,30.00,1,0.00,0.00" in lines
    assert "Dyno,USD,200.00,300.00,expansion,0.00,0.00,0.00,200.00,1,0.00,0.00" in lines
    assert "Acme,USD,85.00,85.00,,0.00,0.00,100.00,0.00,0,100.00,100.00" in lines
    # The rows add up to the page's figures.
    usd = [line.split(",") for line in lines[1:] if ",USD," in line]
    assert sum(Decimal(row[3]) for row in usd) == Decimal("635.00")
    assert sum(Decimal(row[6]) for row in usd) == Decimal("144.25")
