"""Only the processor's token, brand, last4, expiry and address are stored: never a card
number, CVC or bank account number, in the database or the logs.

A full run (every sandbox card and bank account added, a charge declined, the retry that
pays, a refund) with every logger at DEBUG, SQL included; then every column of every table,
the logs and the e-mails are searched for what the customer typed."""

import datetime as dt
import logging
import re

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from payments import services
from payments.gateways import MethodRefused
from payments.gateways.sandbox import TEST_BANK_ACCOUNTS, TEST_CARDS, SandboxGateway
from payments.models import PaymentMethod
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
ROUTING_NUMBER = "110000000"
CARD_NUMBERS = [*TEST_CARDS, "4111111111111111"]  # and one the sandbox refuses
CVCS = {"737", "7373"}  # as typed with the cards: four digits on American Express
SECRET_COLUMN_NAMES = {"number", "card_number", "pan", "cvc", "cvv", "csc", "account_number"}


def typed_forms(number: str) -> set[str]:
    """A number as a person may type it: in one block, or grouped as printed on the card
    (4-6-5 on American Express, fours on the others), with spaces or dashes."""
    if len(number) == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[n : n + 4] for n in range(0, len(number), 4)]
    return {number, " ".join(groups), "-".join(groups)}


SECRET_NUMBERS = {
    form for number in [*CARD_NUMBERS, *TEST_BANK_ACCOUNTS] for form in typed_forms(number)
}


def leaks(text: str) -> set[str]:
    """The secrets in `text`: any card or account number, and a CVC standing next to a
    security-code label. A bare three-digit CVC would match ids and amounts, so a leak of
    one on its own is caught by `cvc_values` instead."""
    found = {number for number in SECRET_NUMBERS if number in text}
    labelled_cvc = re.compile(
        rf"(cvc|cvv|csc|security.code)\W{{0,12}}({'|'.join(CVCS)})(?!\d)", re.IGNORECASE
    )
    return found | {match.group(2) for match in labelled_cvc.finditer(text)}


def every_stored_value():
    """(table.column, value) for every concrete column of every table, as text."""
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        columns = [field.attname for field in model._meta.concrete_fields]
        for row in model._base_manager.values_list(*columns):
            for column, value in zip(columns, row, strict=True):
                if value is not None:
                    yield f"{model._meta.db_table}.{column}", str(value)


@pytest.fixture
def every_log_record(caplog):
    """Every logger at DEBUG into caplog, those that do not propagate to the root too."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    detached = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
    for logger in detached:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in detached:
        logger.removeHandler(caplog.handler)


def full_run(mailoutbox, capture_on_commit):
    subscription = SubscriptionFactory(start=APRIL, now=APRIL)
    organization = subscription.organization
    invoice = subscription.invoices.get()

    def add_card(number):
        try:
            attached = SandboxGateway.attach_card(number=number)
        except MethodRefused:
            return
        services.payment_method_add(
            organization=organization, processor="sandbox", attached=attached
        )

    def add_bank_account(account_number):
        try:
            attached = SandboxGateway.attach_bank_account(
                routing_number=ROUTING_NUMBER, account_number=account_number
            )
        except MethodRefused:
            return
        services.payment_method_add(
            organization=organization, processor="sandbox", attached=attached
        )

    with capture_on_commit(execute=True):
        # Methods that attach but decline every charge: the first collection fails
        add_card("4000000000000341")
        add_bank_account("000222222227")
        assert services.invoice_collect(invoice=invoice, now=APRIL) is None

        # Every other card and account (some refused when attached), then the retry pays
        for number in CARD_NUMBERS:
            if number != "4000000000000341":
                add_card(number)
        for account_number in TEST_BANK_ACCOUNTS:
            if account_number != "000222222227":
                add_bank_account(account_number)
        assert services.payment_retries_if_needed(now=APRIL + dt.timedelta(days=1)) == 1

        attempt = invoice.payment_attempts.get(status="succeeded")
        services.payment_refund(
            attempt=attempt, amount=Money("20.00", "USD"), reason="Outage", now=APRIL
        )
    return organization


def test_no_card_number_cvc_or_account_number_in_the_database_the_logs_or_e_mails(
    every_log_record, mailoutbox, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as queries:  # SQL, with its parameters, logged too
        organization = full_run(mailoutbox, django_capture_on_commit_callbacks)

    stored = list(every_stored_value())
    logs = "\n".join(
        [every_log_record.text, *(record.getMessage() for record in every_log_record.records)]
        + [query["sql"] for query in queries.captured_queries]
    )
    mails = "\n".join(f"{mail.subject}\n{mail.body}" for mail in mailoutbox)

    # What was searched holds the run: the methods, their SQL, the e-mails
    methods = PaymentMethod.objects.filter(organization=organization)
    assert methods.count() == 6  # 4 cards and 2 accounts attached; 6 cards and 1 refused
    assert {"4242", "0341", "6789", "0005"} <= {value for _, value in stored}
    assert "payments_paymentmethod" in logs and methods.first().token in logs
    assert "Receipt" in mails and "Payment failed" in mails

    assert {column: leaks(value) for column, value in stored if leaks(value)} == {}
    assert leaks(logs) == set()
    assert leaks(mails) == set()
    assert [column for column, value in stored if value in CVCS] == []


def test_no_table_has_a_column_for_a_card_number_cvc_or_account_number():
    columns = {
        f"{model._meta.db_table}.{field.column}"
        for model in apps.get_models()
        if model._meta.app_label == "payments"
        for field in model._meta.concrete_fields
        if field.column in SECRET_COLUMN_NAMES
    }

    assert columns == set()


ATTACHABLE_CARDS = [
    number
    for number, (_, behaviour) in TEST_CARDS.items()
    if behaviour in ("ok", "decline_on_charge")
]


@pytest.mark.parametrize("number", ATTACHABLE_CARDS)
def test_the_sandbox_token_does_not_carry_the_card_number(number):
    attached = SandboxGateway.attach_card(number=number)

    assert not any(form in attached.token for form in typed_forms(number))
    assert attached.last4 == number[-4:]


def test_the_sandbox_token_does_not_carry_the_account_number():
    attached = SandboxGateway.attach_bank_account(
        routing_number=ROUTING_NUMBER, account_number="000123456789"
    )

    assert "000123456789" not in attached.token
    assert ROUTING_NUMBER not in attached.token


def test_the_search_finds_a_planted_secret():
    assert leaks("charged 4242 4242 4242 4242 ok") == {"4242 4242 4242 4242"}
    assert leaks('{"cvc": "737"}') == {"737"}
    assert leaks("account 000123456789") == {"000123456789"}
    assert leaks("invoice 737 of 0.737 s") == set()
