"""E-mails as a customer reads them: what they say about the invoice, their text and HTML
parts, their links, and their sending by the task queue with retries."""

import datetime as dt
import re
import smtplib
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.html import escape
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from djmoney.money import Money

from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.lifecycle import services as lifecycle_services
from billing.lifecycle.renewal_reminders import renewal_reminders_send_if_needed
from billing.models import Plan
from billing.notifications import emails
from billing.notifications.digests import digests_send_if_needed
from billing.notifications.services import notification_preferences_set
from billing.subscriptions import services as subscription_services
from billing.support import services as support_services
from payments import reminders
from payments import services as payment_services
from tests.factories import (
    CouponFactory,
    EmployeeFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    card,
    record_call,
)
from usage.alerts.projection import projected_overage_alerts_if_needed
from usage.budgets.services import budget_alerts_if_needed, budget_set

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
SITE = "https://billing.example.com"


def days(n, base=APRIL):
    return base + dt.timedelta(days=n)


class RefusingMailServer(BaseEmailBackend):
    """A mail server that is down: every send fails as smtplib reports it."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
REFUSING = f"{__name__}.RefusingMailServer"


@pytest.fixture
def retries():
    """The e-mails waiting for another try. The periodic jobs' schedules are left out of
    these tests: the scheduler would run them too."""
    Schedule.objects.all().delete()
    return lambda: Schedule.objects.order_by("pk")


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def acme():
    return OrganizationFactory(name="Acme Dental", slug="acme-dental")


# --- the invoice e-mail says how the invoice stands --------------------------------------


def test_an_invoice_paid_by_card_is_e_mailed_as_a_receipt(mailoutbox, committed, email_invoice):
    organization = acme()
    card(organization, now=APRIL)
    with time_machine.travel(APRIL, tick=False), committed():
        subscription = SubscriptionFactory(
            organization=organization, plan=PlanFactory(price=Money("61.75", "USD")), now=APRIL
        )
    invoice = subscription.invoices.get()
    assert invoice.status == "paid"
    mailoutbox.clear()

    email_invoice(invoice)  # rendered once the charge has gone through

    [email] = mailoutbox
    assert email.subject == (
        f"Invoice {invoice.number} – $61.75 paid (Visa •••• 4242) – Acme Dental"
    )
    assert "is paid. Thank you." in email.body
    assert "Amount paid: $61.75" in email.body
    assert "Paid on: 1 Apr 2026" in email.body
    assert "Payment method: Visa •••• 4242" in email.body
    assert f"Confirmation number: {invoice.payment_reference}" in email.body
    assert invoice.payment_reference.startswith("ch_sandbox_")
    for untrue in ("nothing to pay", "Nothing is due", "total is zero"):
        assert untrue.lower() not in (email.subject + email.body).lower()


def test_an_invoice_paid_from_the_credit_balance_says_so(mailoutbox, committed):
    organization = acme()
    invoicing_services.balance_credit_grant(
        organization=organization,
        kind="goodwill",
        amount=Money("500.00", "USD"),
        description="Sorry for the outage",
        now=APRIL,
    )
    with committed():
        subscription = SubscriptionFactory(organization=organization, now=APRIL)

    invoice = subscription.invoices.get()
    [email] = [mail for mail in mailoutbox if invoice.number in mail.subject]
    assert email.subject == (
        f"Invoice {invoice.number} – $199.00 paid from your credit balance – Acme Dental"
    )
    assert "is paid from your credit balance: $199.00 was applied" in email.body
    assert "nothing is charged to your payment method" in email.body
    assert "total is zero" not in email.body


def test_an_invoice_with_nothing_to_pay_says_its_total(mailoutbox, committed):
    organization = acme()
    invoicing_services.discount_apply(
        organization=organization, coupon=CouponFactory(percent_off=Decimal("100")), now=APRIL
    )
    with committed():
        subscription = SubscriptionFactory(organization=organization, now=APRIL)

    invoice = subscription.invoices.get()
    [email] = [mail for mail in mailoutbox if invoice.number in mail.subject]
    assert email.subject == f"Invoice {invoice.number} – nothing to pay – Acme Dental"
    assert "comes to $0.00: there is nothing to pay" in email.body


def test_an_invoice_whose_credits_exceed_its_charges_says_the_rest_went_to_the_balance(
    mailoutbox, settings, email_invoice
):
    # Given an organization on a $199 plan, upgrading to a higher tier priced at $99, its
    # prorations invoiced at once
    settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY = True
    organization = acme()
    subscription = SubscriptionFactory(organization=organization, now=APRIL)
    cheaper_business = PlanFactory(
        name="Business", tier=Plan.Tier.BUSINESS, price=Money("99.00", "USD")
    )

    # When the upgrade is made half-way through the month
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=cheaper_business, now=days(15)
    )
    invoice = subscription.invoices.get(kind="plan_change")
    email_invoice(invoice)

    # Then its e-mail says nothing is due and where the surplus credit went
    [email] = [mail for mail in mailoutbox if invoice.number in mail.subject]
    assert email.subject == f"Invoice {invoice.number} – nothing to pay – Acme Dental"
    assert (
        f"so {invoice.credit_carried} was added to your credit balance; it pays your next "
        "invoices first" in email.body
    )


def test_an_invoice_being_charged_says_it_is_charged_and_a_receipt_follows(
    mailoutbox, email_invoice
):
    organization = acme()
    subscription = SubscriptionFactory(organization=organization, now=APRIL)
    invoice = subscription.invoices.get()
    assert invoice.status == "open"

    email_invoice(invoice)

    [email] = mailoutbox
    assert email.subject == (
        f"Invoice {invoice.number} – $199.00 to be charged to your payment method – Acme Dental"
    )
    assert "It is being charged to your payment methods on file, the default first" in email.body
    assert "a receipt follows once it is paid" in email.body


def test_an_invoice_paid_by_transfer_gives_the_due_date_and_the_bank_details(
    mailoutbox, email_invoice
):
    organization = OrganizationFactory(
        name="Initech", timezone="America/Chicago", payment_terms="invoice", net_days=30
    )
    plan = PlanFactory(price=Money("4500.00", "USD"))
    subscription = SubscriptionFactory(organization=organization, plan=plan, now=APRIL)
    invoice = subscription.invoices.get()

    email_invoice(invoice)

    [email] = mailoutbox
    assert email.subject == (f"Invoice {invoice.number} – $4,500.00 due on 1 May 2026 – Initech")
    assert "comes to $4,500.00, due on 1 May 2026" in email.body
    assert "Please pay it by bank transfer, quoting the payment reference:" in email.body
    assert "IBAN / account number: GB82 WEST 1234 5698 7654 32" in email.body
    assert f"Payment reference: {invoice.number}" in email.body
    html = email.alternatives[0][0]
    assert "<dt>IBAN / account number</dt><dd>GB82 WEST 1234 5698 7654 32</dd>" in html


# --- every e-mail: a text and an HTML part, the organization, a link to its page ----------

EMAIL_TEMPLATES = sorted(
    path.stem
    for path in (Path(django_settings.BASE_DIR) / "templates" / "emails").glob("*.txt")
    if not path.stem.startswith(("_", "base")) and not path.stem.endswith("_subject")
)


@pytest.fixture
def every_email(mailoutbox, committed, monkeypatch):
    """Each e-mail the product sends, from the flows that send them; returns the e-mails with
    the template each was rendered from."""
    rendered = []
    render = emails.email_render

    def spy(**kwargs):
        message = render(**kwargs)
        rendered.append((message["subject"], kwargs["template"]))
        return message

    monkeypatch.setattr(emails, "email_render", spy)

    # A name that HTML escapes, on a plan with a trial, a cheaper plan to go down to
    smith = OrganizationFactory(name="Smith & Sons", slug="smith-sons", timezone="America/New_York")
    professional = PlanFactory(trial_days=14)
    starter = PlanFactory(name="Starter", tier=Plan.Tier.STARTER, price=Money("49.00", "USD"))
    with committed():
        subscription = SubscriptionFactory(
            organization=smith, plan=professional, trial=True, start=APRIL, now=APRIL
        )
        subscription_services.trial_reminders_send_if_needed(now=days(12))
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Too expensive", now=days(13)
        )
        subscription_services.subscription_reactivate(subscription=subscription, now=days(13))
        card(smith, now=days(13))
    with time_machine.travel(days(15), tick=False), committed():
        renewals.renew_subscriptions_if_needed(now=days(15))  # trial ends: active, invoiced, paid
    subscription.refresh_from_db()
    with committed():
        lifecycle_services.subscription_plan_change(
            subscription=subscription, plan=starter, now=days(20)
        )
    with time_machine.travel(days(46), tick=False), committed():
        renewals.renew_subscriptions_if_needed(now=days(46))  # the downgrade applies

    # A card every charge of which fails
    declining = OrganizationFactory()
    card(declining, "4000000000000341", now=APRIL)
    with time_machine.travel(APRIL, tick=False), committed():
        SubscriptionFactory(organization=declining, now=APRIL)

    # An organization paying by transfer: reminded, overdue, then paid, its receipts gathered
    # in the daily digest
    initech = OrganizationFactory(name="O'Brien Realty", payment_terms="invoice", net_days=30)
    notification_preferences_set(
        organization=initech,
        modes={("payment_succeeded", "email"): "digest"},
        recipient_ids=[],
    )
    invoice = SubscriptionFactory(organization=initech, now=APRIL).invoices.get()
    for day in (23, 31, 44):
        with committed():
            reminders.invoice_reminders_if_needed(now=days(day))
    with committed():
        payment_services.invoice_record_bank_transfer(
            invoice=invoice, reference="SEPA-1", received_at=days(45), now=days(45)
        )
    with committed():
        digests_send_if_needed(now=days(46))
    # and asking billing support a question, answered
    with committed():
        question = support_services.billing_request_open(
            organization=initech, kind="question", body="Why net 30?", actor=None, now=days(46)
        )
        support_services.billing_request_reply(
            request=question, author=None, body="Your contract says so.", kind="staff"
        )

    # An organization using its call time fast: a usage alert, a projected overage, a budget
    # alert, and the reminder before it renews
    busy = SubscriptionFactory(start=APRIL, now=APRIL)
    employee = EmployeeFactory(organization=busy.organization)
    with time_machine.travel(days(9), tick=False), committed():
        record_call(employee=employee, seconds=50_000, connected_at=days(8))
        record_call(employee=employee, seconds=50_000, connected_at=days(7))
    with time_machine.travel(days(9), tick=False), committed():
        projected_overage_alerts_if_needed(now=days(9))
    # … and past its monthly budget
    budget_set(organization=busy.organization, amount=Decimal("150"), now=days(9))
    with time_machine.travel(days(9), tick=False), committed():
        budget_alerts_if_needed(now=days(9))
    with time_machine.travel(days(24), tick=False), committed():
        renewal_reminders_send_if_needed(now=days(24))

    templates = dict(rendered)
    return [(mail, templates[mail.subject]) for mail in mailoutbox]


def test_every_email_the_product_sends_is_covered(every_email):
    assert sorted({template for _, template in every_email}) == EMAIL_TEMPLATES


def test_every_email_has_a_text_and_an_accessible_html_part(every_email):
    for mail, template in every_email:
        [(html, mimetype)] = mail.alternatives
        assert mimetype == "text/html", template
        assert html.startswith('<!doctype html>\n<html lang="en">'), template
        assert f"<title>{escape(mail.subject)}</title>" in html, template
        assert "<h1>" in html, template
        # Nothing to fetch: no image, stylesheet or font from anywhere.
        assert not re.search(r"src=|<link|url\(|@import", html), template


def test_every_email_names_the_organization_and_links_to_its_page(every_email):
    for mail, template in every_email:
        name = next(n for n in ("Smith & Sons", "O'Brien Realty", "Organization") if n in mail.body)
        # Plain text stays plain: no HTML entities for "&" or "'".
        assert "&amp;" not in mail.body and "&#x27;" not in mail.body, template
        assert name in mail.subject, template
        assert f"billing contact of {name}" in mail.body, template
        links = re.findall(rf"{SITE}/billing/[\w-]+/\S*", mail.body)
        assert links, template
        html = mail.alternatives[0][0]
        assert f'href="{links[0]}"' in html, template


def test_the_trial_end_emails_say_what_happened(every_email):
    subjects = [mail.subject for mail, _ in every_email]

    assert "Your trial ends on 14 Apr 2026 – Smith & Sons" in subjects
    assert "Your trial has ended: your subscription is active – Smith & Sons" in subjects
    assert "Your change to Starter is scheduled – Smith & Sons" in subjects
    assert "Your plan is now Starter – Smith & Sons" in subjects


# --- sending: through the task queue, tried again when the mail server is down ------------


def test_a_mail_server_that_is_down_delays_the_emails_never_the_charge(
    settings, mailoutbox, committed, retries
):
    organization = acme()
    subscription = SubscriptionFactory(
        organization=organization, plan=PlanFactory(trial_days=14), trial=True, now=APRIL
    )
    card(organization, now=APRIL)
    trial_end = subscription.trial_ends_at
    settings.EMAIL_BACKEND = REFUSING

    # The trial ends while the mail server refuses every message
    with time_machine.travel(trial_end, tick=False), committed():
        renewals.renew_subscriptions_if_needed(now=trial_end)

    # The first invoice is charged all the same; no e-mail went out
    invoice = subscription.invoices.get()
    assert invoice.status == "paid"
    assert mailoutbox == []
    # Each e-mail (the status change, the invoice, the receipt) waits for its second try
    assert [retry.func for retry in retries()] == ["billing.tasks.notification_deliver"] * 3
    assert {retry.next_run for retry in retries()} == {trial_end + dt.timedelta(minutes=1)}

    # The server is back; the scheduler runs them
    settings.EMAIL_BACKEND = LOCMEM
    with time_machine.travel(trial_end + dt.timedelta(minutes=2), tick=False), committed():
        scheduler(broker=get_broker())

    assert sorted(mail.subject for mail in mailoutbox) == [
        f"Invoice {invoice.number} – $199.00 paid (Visa •••• 4242) – Acme Dental",
        f"Receipt: $199.00 paid for invoice {invoice.number} – Acme Dental",
        "Your trial has ended: your subscription is active – Acme Dental",
    ]
    assert not retries().exists()


def test_an_email_is_tried_with_growing_waits_then_given_up(
    settings, mailoutbox, committed, retries, caplog
):
    settings.EMAIL_RETRY_MINUTES = [1, 5]
    settings.EMAIL_BACKEND = REFUSING
    subscription = SubscriptionFactory(organization=acme(), now=APRIL)

    with time_machine.travel(APRIL, tick=False), committed():
        subscription_services.subscription_cancel(
            subscription=subscription, reason="Moving on", now=APRIL
        )
    [retry] = retries()
    assert retry.next_run == APRIL + dt.timedelta(minutes=1)

    with time_machine.travel(APRIL + dt.timedelta(minutes=2), tick=False):
        scheduler(broker=get_broker())
    [retry] = retries()
    assert retry.next_run == APRIL + dt.timedelta(minutes=7)  # five minutes after the second

    with time_machine.travel(APRIL + dt.timedelta(minutes=8), tick=False):
        scheduler(broker=get_broker())
    assert not retries().exists()  # three tries: given up
    assert mailoutbox == []
    assert (
        "Giving up billing.tasks.notification_deliver after 3 attempts: "
        "Connection unexpectedly closed" in caplog.messages
    )
