"""The notification center: every notice recorded once, shown in the app with an unread
count, e-mailed and posted as the organization chose, gathered in a daily digest."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.errors import BillingError
from billing.models import Delivery, Notification
from billing.notifications.digests import digests_send_if_needed
from billing.notifications.services import (
    notification_preferences_set,
    notification_send,
    notifications_mark_read,
)
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.helpers import people_of, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(now):
    """Acme Dental, subscribed, with an administrator, a member and a rival organization."""
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme", billing_emails="ap@acme.example.com"
    )
    people_of(organization, rival=OrganizationFactory(slug="rival"))
    return organization


def notice(organization, key="trial:1", kind=Notification.Kind.TRIAL_ENDING):
    """A notice as the billing services send one, through the one mechanism."""
    notification_send(
        organization=organization,
        kind=kind,
        dedup_key=key,
        template="cancellation_reversed",
        context={"subscription": None, "renews_on": dt.date(2026, 4, 16)},
        data={"example": True},
    )


# --- one notice per dedup key, on the channels chosen ------------------------------------


def test_a_notice_is_recorded_shown_and_e_mailed_once_per_dedup_key(acme, committed, mailoutbox):
    # Given a notice sent, then sent again with the same key (a job that ran twice)
    with committed():
        notice(acme)
    with committed():
        notice(acme)

    # Then it is recorded once, and e-mailed once to the billing contacts
    [notification] = Notification.objects.filter(organization=acme)
    assert notification.title == "Your subscription will renew"
    assert notification.summary.startswith("Your cancellation is withdrawn")
    [email] = mailoutbox
    assert email.to == ["ap@acme.example.com"]
    [delivery] = notification.deliveries.all()
    assert (delivery.channel, delivery.status, delivery.attempts) == ("email", "sent", 1)


def test_an_invoice_is_a_notice_of_its_own_kind_with_its_pdf(acme, committed, mailoutbox):
    # When the organization subscribes and its first invoice is finalized
    with committed():
        subscription = SubscriptionFactory(organization=acme, now=dt.datetime.now(dt.UTC))

    # Then the invoice is in the notification center and its e-mail carries the PDF
    invoice = subscription.invoices.get()
    notification = Notification.objects.get(kind="invoice_issued")
    assert notification.title.startswith(f"Invoice {invoice.number} – $199.00")
    assert notification.data["invoice_number"] == invoice.number
    [email] = [mail for mail in mailoutbox if mail.attachments]
    assert email.subject.startswith(f"Invoice {invoice.number}")
    assert email.attachments[0][0] == f"{invoice.number}.pdf"


def test_e_mail_switched_off_for_a_kind_keeps_it_in_the_app(acme, committed, mailoutbox):
    notification_preferences_set(
        organization=acme, modes={("trial_ending", "email"): "off"}, recipient_ids=[]
    )

    with committed():
        notice(acme)

    assert mailoutbox == []
    assert Notification.objects.get().in_app


def test_in_app_switched_off_hides_the_notice_from_the_center(acme, committed, client):
    notification_preferences_set(
        organization=acme, modes={("trial_ending", "in_app"): "off"}, recipient_ids=[]
    )
    with committed():
        notice(acme)

    response = signed_in(client, "admin").get(reverse("notifications:list", args=["acme"]))

    assert "Your subscription will renew" not in response.text


def test_chosen_members_receive_the_e_mails_too(acme, committed, mailoutbox):
    admin = UserFactory(username="admin")
    notification_preferences_set(organization=acme, modes={}, recipient_ids=[admin.pk])

    with committed():
        notice(acme)

    [email] = mailoutbox
    assert email.to == ["ap@acme.example.com", "admin@example.com"]


def test_notices_can_be_e_mailed_to_the_chosen_members_only(acme, committed, mailoutbox):
    # Given the billing contacts left out, and the member chosen
    member = UserFactory(username="member")
    notification_preferences_set(
        organization=acme, modes={}, recipient_ids=[member.pk], audience="chosen_members"
    )

    # When a notice is sent
    with committed():
        notice(acme)

    # Then only the member is written to, and the change is in the organization's history
    [email] = mailoutbox
    assert email.to == ["member@example.com"]
    assert acme.history.first().notice_audience == "chosen_members"


def test_chosen_members_only_needs_a_member(acme):
    with pytest.raises(BillingError) as refused:
        notification_preferences_set(
            organization=acme, modes={}, recipient_ids=[], audience="chosen_members"
        )

    assert refused.value.code == "recipients_required"
    acme.refresh_from_db()
    assert acme.notice_audience == "contacts_and_members"


def test_the_daily_digest_gathers_the_days_notices_into_one_e_mail(acme, committed, mailoutbox):
    # Given trial and plan notices chosen for the daily digest
    notification_preferences_set(
        organization=acme,
        modes={("trial_ending", "email"): "digest", ("plan_change", "email"): "digest"},
        recipient_ids=[],
    )
    with committed():
        notice(acme, key="a")
        notice(acme, key="b", kind=Notification.Kind.PLAN_CHANGE)
    assert mailoutbox == []

    # When the digest job runs, twice
    with committed():
        sent = digests_send_if_needed(now=dt.datetime.now(dt.UTC))
    with committed():
        again = digests_send_if_needed(now=dt.datetime.now(dt.UTC))

    # Then one e-mail lists both notices, and the re-run sends nothing
    assert (sent, again) == (1, 0)
    [email] = mailoutbox
    assert email.subject == "Your billing notices of 16 Mar 2026: 2 – Acme Dental"
    assert email.body.count("--- Your subscription will renew") == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_mail_server_that_is_down_never_stops_billing(acme, committed, settings):
    # Given a mail server that refuses everything
    settings.EMAIL_BACKEND = "tests.billing.test_notifications.RefusingMailServer"

    # When the organization subscribes (an invoice, a charge, e-mails)
    with committed():
        subscription = SubscriptionFactory(organization=acme, now=dt.datetime.now(dt.UTC))

    # Then the subscription and its invoice stand, and each e-mail waits for another try
    assert subscription.invoices.get().status in ("open", "paid")
    delivery = Delivery.objects.get(notification__kind="invoice_issued")
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert "Connection unexpectedly closed" in delivery.error
    assert delivery.next_attempt_at is not None


# --- the bell and the notification page ---------------------------------------------------


def test_the_bell_shows_each_administrators_own_unread_count_on_every_billing_page(
    acme, committed, client
):
    SubscriptionFactory(organization=acme, now=dt.datetime.now(dt.UTC))
    with committed():
        notice(acme, key="a")
        notice(acme, key="b")
    admin = UserFactory(username="admin")
    client.force_login(admin)

    for page in ("billing:overview", "billing:invoices", "usage:dashboard", "payments:methods"):
        response = client.get(reverse(page, args=["acme"]))
        assert 'aria-label="Notifications: 2 unread"' in response.text, page

    # One read by this administrator: their count goes down, the other's does not
    notifications_mark_read(
        organization=acme, user=admin, notification_ids=[Notification.objects.first().pk]
    )
    assert "Notifications: 1 unread" in client.get(reverse("billing:overview", args=["acme"])).text
    other = UserFactory(username="other_admin")
    MembershipFactory(organization=acme, user=other)
    client.force_login(other)
    assert "Notifications: 2 unread" in client.get(reverse("billing:overview", args=["acme"])).text


def test_members_see_no_bell(acme, committed, client):
    SubscriptionFactory(organization=acme, now=dt.datetime.now(dt.UTC))
    with committed():
        notice(acme)

    response = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    assert 'class="bell"' not in response.text


def test_the_page_lists_newest_first_filters_by_kind_and_marks_read(acme, committed, client):
    with time_machine.travel(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), tick=False), committed():
        notice(acme, key="old")
    with committed():
        notice(acme, key="new", kind=Notification.Kind.PLAN_CHANGE)
    client = signed_in(client, "admin")
    url = reverse("notifications:list", args=["acme"])

    page = client.get(url).text
    assert page.index('data-kind="plan_change"') < page.index('data-kind="trial_ending"')
    filtered = client.get(url, {"kind": "trial_ending"}).text
    assert 'data-kind="plan_change"' not in filtered and 'data-kind="trial_ending"' in filtered

    response = client.post(reverse("notifications:mark_read", args=["acme"]))

    assert response.status_code == 302
    assert 'class="unread-dot"' not in client.get(url).text
    assert 'class="bell-count"' not in client.get(url).text


NOTIFICATION_PAGES = ["notifications:list", "notifications:settings"]
ACCESS = {"member": 403, "rival_admin": 404, "admin": 200, "support": 200}


@pytest.mark.parametrize("page", NOTIFICATION_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, acme, page):
    url = reverse(page, args=["acme"])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("page", NOTIFICATION_PAGES)
@pytest.mark.parametrize(("username", "status"), ACCESS.items())
def test_who_sees_the_notification_pages(client, acme, page, username, status):
    response = signed_in(client, username).get(reverse(page, args=["acme"]))

    assert response.status_code == status


def test_support_staff_cannot_change_the_settings(client, acme):
    response = signed_in(client, "support").post(
        reverse("notifications:settings", args=["acme"]), {}
    )

    assert response.status_code == 403


def test_the_notification_page_runs_a_fixed_number_of_queries(
    acme, committed, client, django_assert_max_num_queries
):
    with committed():
        for n in range(30):
            notice(acme, key=f"n{n}")
    client = signed_in(client, "admin")

    with django_assert_max_num_queries(12):
        response = client.get(reverse("notifications:list", args=["acme"]))

    assert response.text.count('class="notice-item unread"') == 25


# --- the settings page --------------------------------------------------------------------


def test_an_administrator_chooses_the_digest_and_a_member_to_e_mail(acme, client):
    client = signed_in(client, "admin")
    url = reverse("notifications:settings", args=["acme"])
    data = dict(client.get(url).context["form"].initial)
    data["usage_alert__email"] = "digest"
    data["invoice_issued__webhook"] = "off"
    data["recipients"] = [UserFactory(username="member").pk]

    response = client.post(url, data)

    assert response.status_code == 302
    page = client.get(url)
    assert page.context["form"].initial["usage_alert__email"] == "digest"
    assert page.context["form"].initial["invoice_issued__webhook"] == "off"
    assert 'value="on" selected' in page.text
    assert page.context["form"].initial["recipients"] == [UserFactory(username="member").pk]


def test_the_settings_page_refuses_chosen_members_only_without_a_member(acme, client):
    client = signed_in(client, "admin")
    url = reverse("notifications:settings", args=["acme"])
    data = dict(client.get(url).context["form"].initial)
    data["audience"] = "chosen_members"
    data["recipients"] = []

    response = client.post(url, data)

    assert response.status_code == 400
    assert "Choose at least one member to receive the e-mails" in response.text
    assert "Choose one option for each kind of notice" not in response.text
    acme.refresh_from_db()
    assert acme.notice_audience == "contacts_and_members"


def test_the_settings_page_lists_the_members_to_choose(acme, client):
    response = signed_in(client, "admin").get(reverse("notifications:settings", args=["acme"]))

    assert "(member@example.com)" in response.text
    assert "Only the chosen members" in response.text


def test_the_settings_form_needs_its_csrf_token(acme):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(reverse("notifications:settings", args=["acme"]), {})

    assert response.status_code == 403
