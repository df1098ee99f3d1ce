"""Support staff see every notice and delivery of an organization, read-only, and resend."""

import pytest
from django.urls import reverse

from billing.models import Delivery, Notification
from billing.notifications.services import notification_send
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def notices(django_capture_on_commit_callbacks):
    """Acme Dental's twenty notices, each e-mailed."""
    acme = OrganizationFactory(name="Acme Dental", slug="acme")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(20):
            notification_send(
                organization=acme,
                kind=Notification.Kind.PLAN_CHANGE,
                dedup_key=f"n{n}",
                template="cancellation_reversed",
                context={"subscription": None, "renews_on": None},
            )
    return acme


def test_staff_list_an_organizations_notices_in_a_fixed_number_of_queries(
    staff_client, notices, django_assert_max_num_queries
):
    OrganizationFactory(slug="other")

    with django_assert_max_num_queries(12):
        response = staff_client.get(
            reverse("admin:billing_notification_changelist"), {"organization": "acme"}
        )

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 20


def test_a_notice_shows_its_deliveries_and_cannot_be_changed(staff_client, notices):
    notification = Notification.objects.first()
    url = reverse("admin:billing_notification_change", args=[notification.pk])

    page = staff_client.get(url)
    staff_client.post(url, {"title": "Changed"})

    assert "billing@acme.example.com" in page.text
    assert "Save" not in page.text.split("submit-row")[-1][:200]
    notification.refresh_from_db()
    assert notification.title == "Your subscription will renew"


def test_staff_resend_a_notice(
    staff_client, notices, mailoutbox, django_capture_on_commit_callbacks
):
    notification = Notification.objects.first()
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:billing_notification_changelist"),
            {"action": "resend", "_selected_action": [notification.pk]},
        )

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert notification.deliveries.count() == 2


def test_staff_resend_a_delivery(
    staff_client, notices, mailoutbox, django_capture_on_commit_callbacks
):
    delivery = Delivery.objects.first()
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:billing_delivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk]},
        )

    assert len(mailoutbox) == 1
    assert Delivery.objects.filter(notification=delivery.notification, status="sent").count() == 2


def test_the_delivery_log_lists_in_a_fixed_number_of_queries(
    staff_client, notices, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("admin:billing_delivery_changelist"))

    assert response.text.count("billing@acme.example.com") == 20
