import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from djmoney.money import Money

from billing.models import BillingRequest, CreditNote, Notification
from billing.support import services
from tests.billing.support_helpers import MAR_16, overage_month
from tests.factories import OrganizationFactory, UserFactory, sign_in
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db

# Monday 16 Mar 2026, 10:00 UTC: requests opened now are due Tuesday 10:00.
NOW = MAR_16


@pytest.fixture(autouse=True)
def frozen(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def month():
    return overage_month()


@pytest.fixture
def dispute(month):
    return services.billing_request_open(
        organization=month.organization,
        kind="dispute",
        body="Two calls were robocalls.",
        actor=UserFactory(username="alice"),
        invoice=month.invoice,
        line=month.line,
        calls=[month.calls["call-3"], month.calls["call-4"]],
        reason="spam",
        now=NOW,
    )


def url(name, *args):
    return reverse(f"admin:billing_billingrequest_{name}", args=args)


def test_the_queue_shows_what_staff_need_to_triage(
    staff_client, dispute, django_assert_max_num_queries
):
    for n in range(3):  # more requests, same number of queries
        services.billing_request_open(
            organization=OrganizationFactory(),
            kind="question",
            body=f"Question {n}",
            actor=None,
            now=NOW - dt.timedelta(days=n),
        )

    with django_assert_max_num_queries(12):
        response = staff_client.get(url("changelist"))

    page = response.content.decode()
    assert response.status_code == 200
    assert dispute.subject in page and dispute.organization.name in page
    assert "Professional" in page  # the plan
    assert "$0.20" in page  # in question
    assert "24 h 0 min" in page  # time left to the target
    assert "Breached" in page  # the question of two days ago


def test_breaching_soon_lists_requests_due_within_four_hours(staff_client, month):
    def opened(subject, at):
        return services.billing_request_open(
            organization=month.organization,
            kind="question",
            subject=subject,
            body="?",
            actor=None,
            now=at,
        )

    # Opened on Friday afternoon (UTC): one business day later is Monday afternoon
    soon = opened("Due at 13:00", dt.datetime(2026, 3, 13, 13, tzinfo=dt.UTC))
    opened("Due at 15:00", dt.datetime(2026, 3, 13, 15, tzinfo=dt.UTC))
    assert soon.respond_by == NOW + dt.timedelta(hours=3)

    page = staff_client.get(url("changelist"), {"target": "soon"}).content.decode()

    assert "Due at 13:00" in page
    assert "Due at 15:00" not in page


def test_staff_reply_and_the_customer_is_told(
    staff_client, dispute, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("reply", dispute.pk), {"body": "Checking the logs."})

    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == "answered"
    assert Notification.objects.filter(kind="billing_request").count() == 1


def test_an_internal_note_tells_nobody(staff_client, dispute, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            url("reply", dispute.pk), {"body": "Carrier says spam.", "internal": "on"}
        )

    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert not Notification.objects.filter(kind="billing_request").exists()


def test_staff_approve_part_through_the_confirmation_page(staff_client, staff, dispute):
    page = staff_client.get(url("approve", dispute.pk)).content.decode()
    assert "at most $0.20" in page

    response = staff_client.post(
        url("approve", dispute.pk),
        {"amount": "0.12", "refund": "false", "reason": "One was a robocall."},
    )

    assert response.status_code == 302
    credit_note = CreditNote.objects.get()
    assert credit_note.amount == Money(Decimal("0.12"), "USD")
    dispute.refresh_from_db()
    assert (dispute.status, dispute.decided_by) == ("approved", staff)
    assert f"credit note {credit_note.number}" in messages_of(response)[0]


def test_an_approval_above_what_is_in_question_is_refused_with_a_message(staff_client, dispute):
    response = staff_client.post(
        url("approve", dispute.pk), {"amount": "0.21", "refund": "false", "reason": "All."}
    )

    assert "at most $0.20" in messages_of(response)[0]
    assert not CreditNote.objects.exists()


def test_staff_decline_with_an_explanation(staff_client, dispute):
    empty = staff_client.post(url("decline", dispute.pk), {"reason": ""})
    assert "This field is required" in empty.content.decode()

    staff_client.post(url("decline", dispute.pk), {"reason": "Both calls were answered."})

    dispute.refresh_from_db()
    assert (dispute.status, dispute.decision_reason) == ("declined", "Both calls were answered.")


def test_an_attachment_is_downloaded_never_shown_inline(staff_client, dispute):
    pdf = SimpleUploadedFile("log.pdf", b"%PDF-1.4 test", content_type="text/html")
    staff_client.post(url("reply", dispute.pk), {"body": "The call log.", "attachment": pdf})
    message = dispute.messages.get(attachment_name="log.pdf")

    response = staff_client.get(url("attachment", message.pk))

    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_request_is_never_added_nor_deleted_by_hand(staff_client, dispute):
    assert staff_client.get(url("add")).status_code == 403
    assert staff_client.get(url("delete", dispute.pk)).status_code == 403
    assert BillingRequest.objects.count() == 1


def test_a_refund_needs_the_permission_to_make_refunds(client, dispute):
    from django.contrib.auth.models import Permission

    # Approving issues a credit note; a refund needs its own permission (Finance has both).
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_billingrequest", "change_billingrequest", "add_creditnote"]
        )
    )
    sign_in(client, clerk)

    response = client.post(
        url("approve", dispute.pk), {"amount": "0.10", "refund": "true", "reason": "Fair."}
    )

    assert "needs the permission to make refunds" in messages_of(response)[0]
    assert not CreditNote.objects.exists()
