"""Pay by invoice: reminders before the due date, overdue notices after it, suspension after
the grace period, and the bank transfer that settles it all."""

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError
from django.template import Context, Template
from django.template.loader import render_to_string
from django_q.models import Schedule

from billing.invoicing import selectors as invoicing_selectors
from billing.lifecycle import renewals
from billing.models import Invoice
from payments import reminders, services, tasks
from payments.models import InvoiceReminder
from tests.factories import EmployeeFactory, OrganizationFactory, SubscriptionFactory
from usage import selectors as usage_selectors

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
DUE = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)  # net 30


def days(n):
    return DUE + dt.timedelta(days=n)


@pytest.fixture
def subscription():
    """An enterprise customer paying by invoice, net 30, subscribed on 1 Apr 2026."""
    organization = OrganizationFactory(
        name="Globex", payment_terms="invoice", net_days=30, billing_emails="ap@globex.example"
    )
    return SubscriptionFactory(organization=organization, start=APRIL, now=APRIL)


@pytest.fixture
def invoice(subscription):
    return subscription.invoices.get()


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """The daily job at `now`, with time frozen there and e-mails sent as on commit."""

    def run_at(now):
        with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
            return reminders.invoice_reminders_if_needed(now=now)

    return run_at


def status(subscription):
    subscription.refresh_from_db()
    return subscription.status


def notices(mailoutbox):
    """Subjects of the invoice notices sent (not the status-change e-mails)."""
    return [
        mail.subject
        for mail in mailoutbox
        if mail.subject.startswith(("Reminder", "Overdue", "Service suspended"))
    ]


def test_the_invoice_is_due_after_the_organizations_net_days(invoice):
    assert (invoice.status, invoice.due_at) == ("open", DUE)


def test_reminder_overdue_notices_suspension_then_the_transfer_reinstates(
    subscription, invoice, run, mailoutbox
):
    employee = EmployeeFactory(organization=subscription.organization)

    # Eight days before the due date: nothing yet
    assert run(days(-8)) == 0
    assert mailoutbox == []

    # Seven days before: one reminder, with the bank details and the reference to quote
    assert run(days(-7)) == 1
    [reminder] = mailoutbox
    assert reminder.to == ["ap@globex.example"]
    assert reminder.subject == (
        "Reminder: invoice INV-2026-000001 – $199.00 due on 1 May 2026 – Globex"
    )
    assert "IBAN / account number: GB82 WEST 1234 5698 7654 32" in reminder.body
    assert "Payment reference: INV-2026-000001" in reminder.body
    assert run(days(-7)) == 0
    assert run(days(-1)) == 0

    # Due date passed: past due, service on
    assert run(days(0) + dt.timedelta(hours=1)) == 0
    assert status(subscription) == "past_due"

    # Overdue notices on days 1 and 7, each naming the suspension date
    assert run(days(1)) == 1
    assert notices(mailoutbox)[-1] == (
        "Overdue by 1 day: invoice INV-2026-000001 – $199.00 was due on 1 May 2026 – Globex"
    )
    assert "still unpaid on 15 May 2026, your subscription will be suspended" in (
        mailoutbox[-1].body
    )
    assert run(days(2)) == 0
    assert run(days(7)) == 1
    assert notices(mailoutbox)[-1].startswith("Overdue by 7 days: invoice INV-2026-000001")
    assert run(days(13)) == 0
    assert status(subscription) == "past_due"
    assert usage_selectors.call_authorize(
        organization_slug=subscription.organization.slug, employee_id=employee.pk, now=days(13)
    ).allowed

    # Fourteen days overdue: suspended, calls refused, told once
    assert run(days(14)) == 1
    assert status(subscription) == "suspended"
    assert notices(mailoutbox)[-1] == (
        "Service suspended: invoice INV-2026-000001 is overdue – Globex"
    )
    assert "Your subscription is suspended" in mailoutbox[-1].body
    assert (
        usage_selectors.call_authorize(
            organization_slug=subscription.organization.slug,
            employee_id=employee.pk,
            now=days(14),
        ).reason
        == "subscription_suspended"
    )
    sent = len(mailoutbox)
    assert run(days(14)) == 0
    assert run(days(15)) == 0
    assert len(mailoutbox) == sent

    # Staff record the transfer: paid, and service is back at once
    services.invoice_record_bank_transfer(
        invoice=invoice, reference="SEPA-0516", received_at=days(15), now=days(15)
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_reference) == ("paid", "SEPA-0516")
    assert status(subscription) == "active"

    # Nothing more is sent about it, and each notice went out exactly once
    assert run(days(16)) == 0
    assert len(mailoutbox) == sent
    assert len(notices(mailoutbox)) == len(set(notices(mailoutbox))) == 4
    assert list(invoice.reminders.values_list("kind", flat=True)) == [
        "due_soon",
        "overdue_1",
        "overdue_7",
        "suspension",
    ]


def test_a_late_first_run_sends_only_the_latest_notice(subscription, invoice, run, mailoutbox):
    assert run(days(8)) == 1

    assert notices(mailoutbox) == [
        "Overdue by 7 days: invoice INV-2026-000001 – $199.00 was due on 1 May 2026 – Globex"
    ]
    assert list(invoice.reminders.values_list("kind", flat=True)) == ["overdue_7"]
    assert status(subscription) == "past_due"


def test_a_first_run_after_the_grace_period_suspends_through_past_due(subscription, invoice, run):
    assert run(days(20)) == 1

    assert status(subscription) == "suspended"
    history = subscription.history.order_by("history_date", "history_id")
    assert list(history.values_list("status", flat=True))[-2:] == ["past_due", "suspended"]
    assert "INV-2026-000001" in history.last().history_change_reason


def test_no_reminder_before_the_due_date_on_terms_shorter_than_the_reminder(run, mailoutbox):
    organization = OrganizationFactory(payment_terms="invoice", net_days=5)
    invoice = SubscriptionFactory(organization=organization, start=APRIL, now=APRIL).invoices.get()

    assert run(APRIL + dt.timedelta(days=1)) == 0
    assert run(invoice.due_at + dt.timedelta(days=1)) == 1
    assert notices(mailoutbox)[0].startswith("Overdue")


def test_the_days_are_settings(subscription, invoice, run, settings):
    settings.INVOICE_REMINDER_DAYS_BEFORE_DUE = 3
    settings.INVOICE_OVERDUE_REMINDER_DAYS = [2]
    settings.INVOICE_GRACE_DAYS = 5

    assert [run(days(n)) for n in (-4, -3, 1, 2, 4, 5)] == [0, 1, 0, 1, 0, 1]

    assert status(subscription) == "suspended"


def test_invoices_of_automatic_payers_and_settled_invoices_get_nothing(
    subscription, invoice, run, mailoutbox
):
    automatic = SubscriptionFactory(start=APRIL, now=APRIL)
    services.invoice_record_bank_transfer(
        invoice=invoice, reference="EARLY", received_at=days(-10), now=days(-10)
    )

    assert run(days(30)) == 0

    assert mailoutbox == []
    assert status(automatic) == "active"
    assert status(subscription) == "active"


def test_paying_a_later_invoice_does_not_lift_a_suspension_owed_to_an_earlier_one(
    subscription, invoice, run
):
    # Given the May invoice is issued and April's goes unpaid beyond its grace period
    [may] = renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=DUE)
    run(days(14))
    assert status(subscription) == "suspended"

    # When May's invoice is paid
    services.invoice_record_bank_transfer(
        invoice=may, reference="MAY", received_at=days(15), now=days(15)
    )

    # Then service stays suspended, before and after the next run: April's is still unpaid
    assert status(subscription) == "suspended"
    run(days(15))
    assert status(subscription) == "suspended"
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_each_notice_is_recorded_once_per_invoice(invoice):
    InvoiceReminder.objects.create(invoice=invoice, kind="overdue_1", sent_at=DUE)

    with pytest.raises(IntegrityError):
        InvoiceReminder.objects.create(invoice=invoice, kind="overdue_1", sent_at=DUE)


def test_a_daily_schedule_runs_the_task(subscription, invoice):
    schedule = Schedule.objects.get(func="payments.tasks.invoice_reminders")

    assert (schedule.schedule_type, schedule.repeats) == (Schedule.DAILY, -1)
    with time_machine.travel(days(-7), tick=False):
        assert tasks.invoice_reminders() == 1


class TestBankTransferInstructions:
    TEMPLATE = Template("{% load payment_instructions %}{% bank_transfer_instructions invoice %}")

    def render(self, invoice):
        return self.TEMPLATE.render(Context({"invoice": invoice}))

    def test_an_open_invoice_of_an_invoice_payer_says_where_to_pay(self, invoice):
        page = self.render(invoice)

        assert "Pay by bank transfer" in page
        assert "<dt>IBAN / account number</dt><dd>GB82 WEST 1234 5698 7654 32</dd>" in page
        assert "<dt>Payment reference</dt><dd>INV-2026-000001</dd>" in page

    def test_the_reference_line_and_account_are_settings(self, invoice, settings):
        settings.BANK_TRANSFER_INSTRUCTIONS = {
            **settings.BANK_TRANSFER_INSTRUCTIONS,
            "account": "DE89 3704 0044 0532 0130 00",
            "swift": "",
            "reference": "Globex {invoice_number}",
        }

        page = self.render(invoice)

        assert "DE89 3704 0044 0532 0130 00" in page
        assert "Globex INV-2026-000001" in page
        assert "SWIFT" not in page  # an empty detail is left out

    def test_the_invoice_document_carries_them_for_page_and_pdf(self, invoice):
        document = render_to_string(
            "billing/_invoice_document.html", invoicing_selectors.invoice_document(invoice=invoice)
        )

        settlement = document[document.index('<section class="inv-settlement">') :]
        assert "<dt>Payment reference</dt><dd>INV-2026-000001</dd>" in settlement

    def test_nothing_once_paid_nor_for_automatic_payers(self, invoice):
        automatic = SubscriptionFactory(start=APRIL, now=APRIL).invoices.get()
        services.invoice_record_bank_transfer(
            invoice=invoice, reference="PAID", received_at=APRIL, now=APRIL
        )
        invoice.refresh_from_db()

        assert self.render(invoice) == ""
        assert self.render(automatic) == ""
