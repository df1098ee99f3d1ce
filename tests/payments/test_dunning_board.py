"""The dunning board: every open invoice in dunning, by stage (each retry, overdue invoice
payers, suspended), with the amount, days overdue, failed tries, next retry, when service
stops and the last decline; filtered, sorted, each organization linked to its 360 page."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from payments import selectors, services
from tests.factories import (
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    declined_invoice,
    sign_in,
)

pytestmark = pytest.mark.django_db


def _failing(name, now, *, failures, price="49.00"):
    """An organization paying by card whose first invoice failed `failures` times."""
    organization = SubscriptionFactory(
        organization__name=name, plan=PlanFactory(price=Money(price, "USD")), now=now
    ).organization
    invoice = declined_invoice(organization, now=now)
    for n in range(1, failures):
        services.invoice_collect(invoice=invoice, now=now + dt.timedelta(days=n))
    return invoice


@pytest.fixture
def board(now, settings):
    """Retries after 1, 3, 5 and 7 days: Acme failed once, Globex twice ($199), Hooli five
    times (every retry: suspended), Initech pays by invoice and is 3 days overdue, and
    Northwind paid."""
    settings.PAYMENT_RETRY_DAYS = [1, 3, 5, 7]
    acme = _failing("Acme Dental", now, failures=1)
    globex = _failing("Globex", now, failures=2, price="199.00")
    hooli = _failing("Hooli", now, failures=5)
    initech = SubscriptionFactory(
        organization=OrganizationFactory(name="Initech", payment_terms="invoice", net_days=14),
        now=now,
    ).organization.invoices.get()
    SubscriptionFactory(organization__name="Northwind", now=now)  # not charged yet: not in dunning
    return {
        "acme": acme,
        "globex": globex,
        "hooli": hooli,
        "initech": initech,
        "now": initech.due_at + dt.timedelta(days=3),
    }


def test_invoices_are_grouped_by_stage_in_the_order_dunning_runs(board, now):
    stages = selectors.dunning_board(now=board["now"])

    assert [(stage.key, [row.invoice for row in stage.rows]) for stage in stages] == [
        ("retry-1", [board["acme"]]),
        ("retry-2", [board["globex"]]),
        ("overdue", [board["initech"]]),
        ("suspended", [board["hooli"]]),
    ]
    assert [stage.label for stage in stages] == [
        "Retry 1 of 4",
        "Retry 2 of 4",
        "Overdue, paying by invoice",
        "Suspended",
    ]


def test_each_row_says_what_is_at_risk_and_when_service_stops(board, now, settings):
    stages = {stage.key: stage for stage in selectors.dunning_board(now=board["now"])}

    globex = stages["retry-2"].rows[0]
    assert globex.amount == board["globex"].total
    assert globex.attempts == 2
    assert globex.next_retry_at == now + dt.timedelta(days=3)  # from the first failure
    assert globex.suspends_at == now + dt.timedelta(days=7)  # the last retry
    assert globex.last_decline
    initech = stages["overdue"].rows[0]
    assert initech.days_overdue == 3
    assert initech.suspends_at == board["initech"].due_at + dt.timedelta(
        days=settings.INVOICE_GRACE_DAYS
    )
    hooli = stages["suspended"].rows[0]
    assert (hooli.attempts, hooli.next_retry_at, hooli.suspends_at) == (5, None, None)
    assert stages["retry-2"].totals == [globex.amount]


def test_filters_by_stage_and_payment_terms(board):
    only_second = selectors.dunning_board(now=board["now"], stage="retry-2")
    invoice_payers = selectors.dunning_board(now=board["now"], payment_terms="invoice")

    assert [row.invoice for stage in only_second for row in stage.rows] == [board["globex"]]
    assert [row.invoice for stage in invoice_payers for row in stage.rows] == [board["initech"]]


def test_sorts_within_a_stage(now, settings):
    settings.PAYMENT_RETRY_DAYS = [1, 3]
    small = _failing("Small", now, failures=1, price="10.00")
    large = _failing("Large", now, failures=1, price="500.00")

    by_amount = selectors.dunning_board(now=now, sort="amount")
    by_name = selectors.dunning_board(now=now, sort="organization")

    assert [row.invoice for row in by_amount[0].rows] == [large, small]
    assert [row.invoice for row in by_name[0].rows] == [large, small]


# --- the page ------------------------------------------------------------------------------


URL = reverse("admin:payments_dunning_board")


def test_support_sees_the_board_with_links_to_each_organizations_360(client, board):
    with time_machine.travel(board["now"], tick=False):
        sign_in(client, StaffFactory(username="sam", roles=["Support"]))
        page = client.get(URL).content.decode()

    for key in ("acme", "globex", "hooli", "initech"):
        invoice = board[key]
        assert invoice.number in page
        assert reverse("admin:billing_organization_360", args=[invoice.organization_id]) in page
    assert page.index('id="stage-retry-1"') < page.index('id="stage-suspended"')
    assert "1 invoice, $199.00 at risk" in page  # Globex, retried twice
    assert "Northwind" not in page


def test_the_filters_narrow_the_board_and_a_wrong_value_is_named(client, board):
    with time_machine.travel(board["now"], tick=False):
        sign_in(client, StaffFactory(username="sam", roles=["Support"]))
        narrowed = client.get(URL, {"stage": "suspended"}).content.decode()
        wrong = client.get(URL, {"sort": "loudest"}).content.decode()

    assert board["hooli"].number in narrowed and board["acme"].number not in narrowed
    assert "Sort: Select a valid choice." in wrong
    assert board["acme"].number in wrong  # nothing filtered on a wrong value


@pytest.mark.parametrize("roles", [[], ["Catalog"]])
def test_staff_who_do_not_read_billing_are_refused(client, board, roles):
    sign_in(client, StaffFactory(username="other", roles=roles))

    assert client.get(URL).status_code == 403


def test_the_board_runs_the_same_queries_however_many_invoices(client, now, settings):
    settings.PAYMENT_RETRY_DAYS = [1, 3]
    sign_in(client, StaffFactory(username="sam", roles=["Support"]))
    _failing("First", now, failures=1)
    client.get(URL)

    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for n in range(8):
        _failing(f"Org {n}", now, failures=1 + n % 3)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)

    assert len(many) == len(few)
