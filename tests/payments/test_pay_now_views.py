"""Paying an invoice at once with "Pay now", and the banner every billing page shows while
a payment is past due or service is suspended."""

import datetime as dt

import pytest
from django.urls import reverse

from billing.lifecycle import renewals
from billing.models import Organization, Subscription
from payments import services
from payments.models import Collection
from tests.factories import card, declined_invoice
from tests.helpers import messages_of, signed_in
from tests.payments.conftest import VISA, url_of

pytestmark = pytest.mark.django_db


# --- pay now ------------------------------------------------------------------------------


def suspend(organization, now, settings):
    """Decline every charge until the retries are exhausted: the subscription is suspended."""
    settings.PAYMENT_RETRY_DAYS = [1]
    invoice = declined_invoice(organization, now=now)
    services.payment_retries_if_needed(now=now + dt.timedelta(days=1))
    assert Subscription.objects.get(organization=organization).status == "suspended"
    return invoice


def test_pay_now_with_a_good_default_card_pays_and_reinstates_a_suspended_subscription(
    client, acme, now, settings
):
    invoice = suspend(acme, now, settings)
    card(acme, VISA, make_default=True)

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    invoice.refresh_from_db()
    attempt = invoice.payment_attempts.get(status="succeeded")
    assert response.redirect_chain == [
        (reverse("billing:invoice", args=["acme", invoice.number]), 302)
    ]
    assert invoice.status == "paid"
    assert Subscription.objects.get(organization=acme).status == "active"
    assert messages_of(response) == [
        f"Invoice {invoice.number} is paid: $199.00 from Visa •••• 4242. "
        f"Confirmation number {attempt.processor_reference}."
    ]
    assert "payment-banner" not in response.content.decode()


def test_pay_now_on_a_past_due_invoice_pays_it(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    card(acme, VISA, make_default=True)

    signed_in(client, "admin").post(reverse("payments:pay_now", args=["acme", invoice.number]))

    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert Subscription.objects.get(organization=acme).status == "active"
    assert Collection.objects.get(invoice=invoice).state == "paid"


def test_a_failed_pay_now_says_why_and_keeps_the_retry_schedule(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    next_retry = Collection.objects.get(invoice=invoice).next_retry_at

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    assert messages_of(response) == [
        f"Invoice {invoice.number} is not paid. The card was declined by its bank."
    ]
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert Collection.objects.get(invoice=invoice).next_retry_at == next_retry


def test_pay_now_without_a_method_says_to_add_one(client, acme):
    invoice = acme.invoices.get()

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    assert "No payment method on file" in messages_of(response)[0]


def test_pay_now_on_a_paid_invoice_charges_nothing_more(client, acme, wallet):
    signed_in(client, "admin")
    client.post(url_of("pay_now", "acme", wallet), follow=True)

    again = client.post(url_of("pay_now", "acme", wallet), follow=True)

    assert messages_of(again) == [
        f"Invoice {wallet.invoice.number} is paid: there is nothing to pay."
    ]
    assert wallet.invoice.payment_attempts.count() == 1


def test_the_invoice_page_offers_pay_now_only_for_an_open_invoice_of_an_automatic_payer(
    client, acme, wallet
):
    url = reverse("billing:invoice", args=["acme", wallet.invoice.number])
    pay = reverse("payments:pay_now", args=["acme", wallet.invoice.number])
    signed_in(client, "admin")

    open_page = client.get(url).content.decode()
    Organization.objects.filter(pk=acme.pk).update(payment_terms="invoice")
    invoice_payer_page = client.get(url).content.decode()
    Organization.objects.filter(pk=acme.pk).update(payment_terms="automatic")
    services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))
    paid_page = client.get(url).content.decode()
    staff_page = signed_in(client, "support").get(url).content.decode()

    assert pay in open_page
    assert pay not in invoice_payer_page
    assert pay not in paid_page
    assert pay not in staff_page


# --- the banner ---------------------------------------------------------------------------

BILLING_PAGES = [
    ("billing:overview", []),
    ("billing:plans", []),
    ("billing:invoices", []),
    ("usage:dashboard", []),
    ("usage:employees", []),
    ("usage:phone_numbers", []),
    ("payments:methods", []),
]


def test_when_suspended_every_billing_page_shows_the_banner_with_both_ways_out(
    client, acme, now, settings
):
    invoice = suspend(acme, now, settings)
    signed_in(client, "admin")
    pages = [reverse(name, args=["acme", *args]) for name, args in BILLING_PAGES]
    pages.append(reverse("billing:invoice", args=["acme", invoice.number]))

    for url in pages:
        page = client.get(url).content.decode()
        banner = page[page.index('class="payment-banner') : page.index("</main>")]
        assert "Service is suspended" in banner, url
        assert f'href="{reverse("payments:methods", args=["acme"])}"' in banner, url
        assert "Update payment method" in banner, url
        assert reverse("payments:pay_now", args=["acme", invoice.number]) in banner, url
        assert "Pay now $199.00" in banner, url


def test_the_banner_names_exactly_the_invoices_that_restore_service_with_pay_now(
    client, acme, now, settings
):
    # Given the first invoice unpaid after every retry (suspended), and the next month's
    # invoice declined and still being retried
    settings.PAYMENT_RETRY_DAYS = [35]
    first = declined_invoice(acme, now=now)
    subscription = Subscription.objects.get(organization=acme)
    [second] = renewals.subscription_renew_if_needed(
        subscription_id=subscription.pk, now=subscription.current_period_end
    )
    services.invoice_collect(invoice=second, now=subscription.current_period_end)
    services.payment_retries_if_needed(now=now + dt.timedelta(days=35))
    assert Subscription.objects.get(organization=acme).status == "suspended"

    page = signed_in(client, "admin").get(reverse("billing:invoices", args=["acme"]))

    html = page.content.decode()
    banner = " ".join(html[html.index('class="payment-banner') : html.index("</main>")].split())
    restore = banner[banner.index("To restore service") : banner.index("Also unpaid")]
    also = banner[banner.index("Also unpaid") :]
    assert f"To restore service, pay invoice {first.number} ($199.00)" in restore
    assert reverse("payments:pay_now", args=["acme", first.number]) in restore
    assert second.number not in restore
    assert second.number in also and "service is not suspended for it" in also
    assert reverse("payments:pay_now", args=["acme", second.number]) in also


def test_when_past_due_the_banner_gives_the_reason_and_the_next_retry(client, acme, now):
    declined_invoice(acme, now=now)

    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Payment failed" in html
    assert "The card was declined by its bank." in html
    assert "We will try again on 17 Mar 2026." in html
    assert "Pay now" in html


def test_the_next_retry_is_shown_in_the_organizations_timezone(client, acme, now):
    Organization.objects.filter(pk=acme.pk).update(timezone="Pacific/Auckland")
    declined_invoice(acme, now=now + dt.timedelta(hours=3))  # retry at 13:00 UTC on the 17th

    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert "We will try again on 18 Mar 2026." in page.content.decode()  # 02:00 in Auckland


def test_no_banner_while_the_subscription_is_in_good_standing(client, acme, wallet):
    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert "payment-banner" not in page.content.decode()


def test_members_are_told_only_that_service_is_suspended_and_whom_to_ask(
    client, acme, now, settings
):
    suspend(acme, now, settings)

    page = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Service is suspended:</strong> ask an administrator" in html
    assert 'href="mailto:admin@example.com"' in html
    assert "Pay now" not in html and "INV-" not in html and "declined" not in html


def test_members_see_no_banner_while_payment_is_only_past_due(client, acme, now):
    declined_invoice(acme, now=now)

    page = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    assert "payment-banner" not in page.content.decode()


def test_staff_see_the_banner_without_pay_now(client, acme, now, settings):
    invoice = suspend(acme, now, settings)

    page = signed_in(client, "support").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Service is suspended" in html and "Update payment method" in html
    assert reverse("payments:pay_now", args=["acme", invoice.number]) not in html
