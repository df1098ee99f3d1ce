"""The payment methods page: who may see and change what, making a backup the default,
the backups' order, editing and removing a method, the payment history, the way to the
page, and a constant number of queries."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from payments import services
from payments.gateways import AttachedMethod
from payments.models import PaymentAttempt, PaymentMethod
from tests.factories import OrganizationFactory, UserFactory, card, declined_invoice
from tests.helpers import messages_of, signed_in
from tests.payments.conftest import (
    ALWAYS_DECLINED,
    MASTERCARD,
    VISA,
    bank_details,
    card_details,
    live_methods,
    url_of,
)

pytestmark = pytest.mark.django_db


# --- access -------------------------------------------------------------------------------

PAGES = ["methods", "method_edit", "method_remove"]
ACTIONS = {
    "method_add_card": card_details(),
    "method_add_bank_account": bank_details(),
    "method_default": {},
    "method_up": {},
    "method_down": {},
    "method_edit": {
        "exp_month": "1",
        "exp_year": "2031",
        "billing_name": "Ada",
        "billing_postal_code": "10001",
        "billing_country": "US",
    },
    "method_remove": {},
    "pay_now": {},
}


def test_the_payment_methods_page_lives_under_billing(acme):
    assert reverse("payments:methods", args=["acme"]) == "/billing/acme/payment-methods/"
    assert (
        reverse("payments:pay_now", args=["acme", "INV-1"]) == "/billing/acme/invoices/INV-1/pay/"
    )


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, wallet, name):
    url = url_of(name, "acme", wallet)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_action(client, wallet, name):
    response = client.post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 200), ("support", 200)],
)
def test_page_access_matrix(client, wallet, name, username, status):
    response = signed_in(client, username).get(url_of(name, "acme", wallet))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert "•••• 4242".encode() not in response.content


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 302), ("support", 403)],
)
def test_action_access_matrix(client, wallet, name, username, status):
    response = signed_in(client, username).post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content


def test_refused_actions_change_nothing(client, acme, wallet):
    before = live_methods(acme)
    for username in ("member", "support", "rival_admin"):
        signed_in(client, username)
        for name, data in ACTIONS.items():
            client.post(url_of(name, "acme", wallet), data)

    assert live_methods(acme) == before
    assert PaymentMethod.objects.get(pk=wallet.amex.pk).exp_year is None
    assert not PaymentAttempt.objects.exists()
    wallet.invoice.refresh_from_db()
    assert wallet.invoice.status == "open"


def test_an_admin_of_another_organization_cannot_reach_its_methods_through_their_own(
    client, acme, wallet
):
    """Ids and invoice numbers of another organization are unknown under one's own."""
    signed_in(client, "rival_admin")

    responses = [
        client.get(url_of("method_edit", "rival", wallet)),
        client.post(url_of("method_default", "rival", wallet)),
        client.post(url_of("method_remove", "rival", wallet)),
        client.post(url_of("pay_now", "rival", wallet)),
    ]

    assert [response.status_code for response in responses] == [404] * 4
    assert live_methods(acme)[0] == ("4242", True)
    assert PaymentMethod.objects.filter(removed_at__isnull=True).count() == 3
    assert not PaymentAttempt.objects.exists()


@pytest.mark.parametrize(
    "name", ["method_add_card", "method_default", "method_up", "method_down", "pay_now"]
)
def test_actions_answer_only_posts(client, wallet, name):
    response = signed_in(client, "admin").get(url_of(name, "acme", wallet))

    assert response.status_code == 405


def test_a_removed_method_is_gone_from_every_url(client, acme, wallet):
    services.payment_method_remove(payment_method=wallet.amex)
    signed_in(client, "admin")

    assert client.get(url_of("method_edit", "acme", wallet)).status_code == 404
    assert client.post(url_of("method_up", "acme", wallet)).status_code == 404


def test_staff_see_methods_and_payments_without_forms_that_would_change_them(client, acme, wallet):
    services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))
    signed_in(client, "support")

    page = client.get(reverse("payments:methods", args=["acme"])).content.decode()
    edit = client.get(url_of("method_edit", "acme", wallet)).content.decode()

    assert "Visa •••• 4242" in page and "Succeeded" in page
    for control in ("Add a card", 'name="number"', "Make default", "Remove…", ">Edit<"):
        assert control not in page
    assert 'name="billing_name"' not in edit
    assert "support staff" in page


@pytest.mark.parametrize("name", ACTIONS)
def test_action_forms_refuse_posts_without_a_csrf_token(acme, wallet, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == 403
    assert len(live_methods(acme)) == 3
    assert not PaymentAttempt.objects.exists()


def test_every_form_carries_a_csrf_token(client, acme, wallet):
    declined_invoice(acme)  # the banner's "Pay now" form too
    signed_in(client, "admin")

    for url in (
        reverse("payments:methods", args=["acme"]),
        url_of("method_edit", "acme", wallet),
        url_of("method_remove", "acme", wallet),
        reverse("billing:invoice", args=["acme", wallet.invoice.number]),
    ):
        page = client.get(url).content.decode()
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")


# --- default, order, edit, remove ---------------------------------------------------------


def test_admin_makes_a_backup_the_default(client, acme, wallet):
    response = signed_in(client, "admin").post(
        url_of("method_default", "acme", wallet), follow=True
    )

    assert "Mastercard •••• 4444 is now the default" in messages_of(response)[0]
    assert live_methods(acme) == [("4444", True), ("4242", False), ("0005", False)]


def test_admin_moves_backups_up_and_down(client, acme, wallet):
    signed_in(client, "admin")

    up = client.post(url_of("method_up", "acme", wallet), follow=True)

    assert messages_of(up) == ["American Express •••• 0005 is now backup 1."]
    assert live_methods(acme) == [("4242", True), ("0005", False), ("4444", False)]

    client.post(reverse("payments:method_down", args=["acme", wallet.amex.pk]))

    assert live_methods(acme) == [("4242", True), ("4444", False), ("0005", False)]


def test_the_first_backup_cannot_go_up_nor_the_last_down_nor_the_default_anywhere(
    client, acme, wallet
):
    signed_in(client, "admin")

    client.post(reverse("payments:method_up", args=["acme", wallet.mastercard.pk]))
    client.post(reverse("payments:method_down", args=["acme", wallet.amex.pk]))
    client.post(reverse("payments:method_down", args=["acme", wallet.visa.pk]))

    assert live_methods(acme) == [("4242", True), ("4444", False), ("0005", False)]


def test_the_order_decides_which_backup_is_charged_first(client, acme, wallet):
    """What the page shows is what collection does: the default, then backups in order."""
    services.payment_method_remove(payment_method=wallet.mastercard)
    first_backup = card(acme, "5555555555554444")
    declining = card(acme, ALWAYS_DECLINED, make_default=True)
    signed_in(client, "admin")
    client.post(reverse("payments:method_up", args=["acme", first_backup.pk]))
    client.post(reverse("payments:method_up", args=["acme", first_backup.pk]))

    attempt = services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))

    tried = list(wallet.invoice.payment_attempts.order_by("pk").values_list("payment_method_id"))
    assert tried == [(declining.pk,), (first_backup.pk,)]
    assert attempt.payment_method == first_backup


def test_admin_edits_a_cards_expiry_and_billing_address(client, acme, wallet):
    signed_in(client, "admin")
    form = client.get(url_of("method_edit", "acme", wallet))
    assert form.context["form"].initial["billing_name"] == ""

    response = client.post(
        url_of("method_edit", "acme", wallet),
        {
            "exp_month": "4",
            "exp_year": "2031",
            "billing_name": "Grace Hopper",
            "billing_address": "1 Main St",
            "billing_postal_code": "02139",
            "billing_country": "us",
        },
        follow=True,
    )

    assert messages_of(response) == ["American Express •••• 0005 is updated."]
    amex = PaymentMethod.objects.get(pk=wallet.amex.pk)
    assert (amex.expiry, amex.billing_name, amex.billing_postal_code, amex.billing_country) == (
        "04/2031",
        "Grace Hopper",
        "02139",
        "US",
    )
    assert (
        client.get(url_of("method_edit", "acme", wallet)).context["form"].initial["exp_year"]
        == 2031
    )


def test_an_edit_to_a_past_expiry_is_refused(client, acme, wallet):
    response = signed_in(client, "admin").post(
        url_of("method_edit", "acme", wallet),
        {**ACTIONS["method_edit"], "exp_month": "1", "exp_year": "2026"},
    )

    assert response.status_code == 400
    assert "This card has expired" in response.content.decode()
    assert PaymentMethod.objects.get(pk=wallet.amex.pk).exp_year is None


def test_a_bank_account_is_edited_without_an_expiry(client, acme):
    account = services.payment_method_add(
        organization=acme,
        processor="sandbox",
        attached=AttachedMethod("pm_sandbox_ok_1", "bank_account", "Sandbox test bank", "6789"),
    )
    signed_in(client, "admin")

    page = client.get(reverse("payments:method_edit", args=["acme", account.pk])).content.decode()
    client.post(
        reverse("payments:method_edit", args=["acme", account.pk]),
        {"billing_name": "Acme Inc.", "billing_postal_code": "10118", "billing_country": "US"},
    )

    assert 'name="exp_month"' not in page and "Account holder" in page
    assert PaymentMethod.objects.get(pk=account.pk).billing_name == "Acme Inc."


def test_admin_confirms_and_removes_a_backup(client, acme, wallet):
    signed_in(client, "admin")
    confirm = client.get(url_of("method_remove", "acme", wallet)).content.decode()
    assert "Remove American Express •••• 0005?" in confirm

    response = client.post(url_of("method_remove", "acme", wallet), follow=True)

    assert messages_of(response)[0].startswith("American Express •••• 0005 is removed.")
    assert live_methods(acme) == [("4242", True), ("4444", False)]
    assert [row.method.last4 for row in response.context["on_file"].rows] == ["4242", "4444"]


def test_the_default_cannot_be_removed_while_others_remain(client, acme, wallet):
    response = signed_in(client, "admin").post(
        reverse("payments:method_remove", args=["acme", wallet.visa.pk]), follow=True
    )

    assert (
        '<li class="error">This is your default payment method: make another one the default '
        "first.</li>" in response.content.decode()
    )
    assert len(live_methods(acme)) == 3


def test_the_last_method_cannot_be_removed_while_the_subscription_renews(client, acme):
    only = card(acme)

    response = signed_in(client, "admin").post(
        reverse("payments:method_remove", args=["acme", only.pk]), follow=True
    )

    assert "This is your only payment method" in messages_of(response)[0]
    assert live_methods(acme) == [("4242", True)]


def test_an_expired_card_is_marked_so_on_the_list(client, acme, wallet, now):
    PaymentMethod.objects.filter(pk=wallet.mastercard.pk).update(exp_month=2, exp_year=2026)
    PaymentMethod.objects.filter(pk=wallet.amex.pk).update(exp_month=3, exp_year=2026)

    response = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    expired = {row.method.last4: row.is_expired for row in response.context["on_file"].rows}
    assert expired == {"4242": False, "4444": True, "0005": False}
    assert response.content.decode().count(">Expired</span>") == 1


# --- payment history ----------------------------------------------------------------------


def test_payment_history_shows_each_attempt_with_its_outcome(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    good = card(acme, VISA, make_default=True)
    paid = services.invoice_collect(
        invoice=invoice, now=now + dt.timedelta(hours=2), on_request=True
    )
    signed_in(client, "admin")

    response = client.get(reverse("payments:methods", args=["acme"]))

    rows = response.context["history"].object_list
    assert [(row.status, row.payment_method) for row in rows] == [
        ("succeeded", good),
        ("failed", PaymentMethod.objects.get(last4="0341")),
    ]
    page = response.content.decode()
    assert reverse("billing:invoice", args=["acme", invoice.number]) in page
    assert "The card was declined by its bank." in page
    assert paid.processor_reference in page
    assert "16 Mar 2026, 12:00" in page and "Visa •••• 0341" in page


def test_a_bank_transfer_recorded_by_staff_is_in_the_history(client, acme, now):
    services.invoice_record_bank_transfer(
        invoice=acme.invoices.get(), reference="WIRE-7781", received_at=now
    )

    page = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    assert "Bank transfer" in page.content.decode() and "WIRE-7781" in page.content.decode()


def test_long_histories_come_a_page_at_a_time(client, acme, now):
    invoice = acme.invoices.get()
    PaymentAttempt.objects.bulk_create(
        PaymentAttempt(
            invoice=invoice,
            amount=invoice.total,
            status="failed",
            idempotency_key=f"k{n}",
            attempted_at=now - dt.timedelta(days=n),
        )
        for n in range(30)
    )
    signed_in(client, "admin")

    first = client.get(reverse("payments:methods", args=["acme"]))
    second = client.get(reverse("payments:methods", args=["acme"]), {"page": "2"})

    assert len(first.context["history"].object_list) == 25
    assert len(second.context["history"].object_list) == 5
    assert "Older →" in first.content.decode() and "← Newer" in second.content.decode()


def test_the_tabs_and_the_overview_lead_to_payment_methods(client, acme):
    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert page.content.decode().count(reverse("payments:methods", args=["acme"])) == 2


# --- speed --------------------------------------------------------------------------------


# Session and user (2), the person's access and organizations (2), the banner (1, or 2 with
# a past-due invoice), the methods (1), the history (2: its size and one page).
QUERY_BUDGET = 9


def test_the_methods_page_runs_a_constant_number_of_queries(
    client, acme, now, django_assert_max_num_queries
):
    invoice = declined_invoice(acme, now=now)
    methods = [card(acme, MASTERCARD, expiry=(1 + n % 12, 2030 + n // 12)) for n in range(20)]
    PaymentAttempt.objects.bulk_create(
        PaymentAttempt(
            invoice=invoice,
            payment_method=methods[n % 20],
            amount=invoice.total,
            status="failed",
            failure_message="The card was declined by its bank.",
            idempotency_key=f"attempt-{n}",
            attempted_at=now - dt.timedelta(hours=n),
        )
        for n in range(40)
    )
    for _ in range(10):  # other organizations' methods are not read
        card(OrganizationFactory())
    signed_in(client, "admin")

    with django_assert_max_num_queries(QUERY_BUDGET):
        response = client.get(reverse("payments:methods", args=["acme"]))

    assert len(response.context["on_file"].rows) == 21
    assert len(response.context["history"].object_list) == 25


@pytest.mark.parametrize("page", ["method_edit", "method_remove"])
def test_the_method_pages_run_a_constant_number_of_queries(
    client, acme, wallet, page, django_assert_max_num_queries
):
    declined_invoice(acme)
    signed_in(client, "admin")

    with django_assert_max_num_queries(7):  # the common 6 with the banner's invoice, the method
        response = client.get(url_of(page, "acme", wallet))

    assert response.status_code == 200
