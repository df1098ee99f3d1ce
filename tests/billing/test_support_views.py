import csv
import io

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import BillingRequest, Membership
from billing.support import services
from billing.support.services import Attachment
from tests.billing.support_helpers import MAR_16, overage_month
from tests.factories import (
    FeatureFactory,
    MembershipFactory,
    OrganizationFactory,
    StaffFactory,
    UserFactory,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel(MAR_16, tick=False):
        yield


@pytest.fixture
def month():
    return overage_month(organization=OrganizationFactory(name="Acme Dental", slug="acme"))


@pytest.fixture
def admin(month):
    return MembershipFactory(organization=month.organization, user=UserFactory(username="alice"))


@pytest.fixture
def admin_client(client, admin):
    return sign_in(client, admin.user)


@pytest.fixture
def dispute(month, admin):
    return services.billing_request_open(
        organization=month.organization,
        kind="dispute",
        body="Please check.",
        actor=admin.user,
        invoice=month.invoice,
        line=month.line,
        attachment=Attachment("proof.png", b"\x89PNG\r\n\x1a\n0000"),
    )


def overage_calls(request):
    """The calls of the request's line, as a dispute copies them."""
    from usage.disputes.selectors import line_calls

    return [
        services.CallInQuestion(
            call.platform_call_id,
            call.employee.name,
            call.direction,
            call.connected_at,
            call.billable_seconds,
        )
        for call in line_calls(line=request.line)
    ]


def support_url(slug="acme"):
    return reverse("billing:support", args=[slug])


def calls_url(month):
    return reverse("usage:line_calls", args=["acme", month.invoice.number, month.line.pk])


class TestSupportPage:
    def test_says_how_to_reach_support_and_how_fast_it_answers(self, admin_client):
        page = admin_client.get(support_url()).content.decode()

        assert "billing@example.com" in page
        assert "1 business day" in page
        assert "Send to billing support" in page

    def test_priority_support_answers_faster(self, admin_client, month):
        month.invoice.subscription.plan.features.add(FeatureFactory(code="priority_support"))

        assert "4 business hours" in admin_client.get(support_url()).content.decode()

    def test_lists_requests_with_status_and_conversation_but_no_internal_note(
        self, admin_client, dispute, django_assert_max_num_queries
    ):
        staff = StaffFactory(username="sam")
        services.billing_request_reply(
            request=dispute, author=staff, body="Secret", kind="internal"
        )
        services.billing_request_reply(
            request=dispute, author=staff, body="We are checking.", kind="staff"
        )

        more = [
            services.billing_request_open(
                organization=dispute.organization,
                kind="dispute",
                body=f"Also this one ({n}).",
                actor=dispute.opened_by,
                invoice=dispute.invoice,
                line=dispute.line,
                calls=[list(overage_calls(dispute))[n]],
                reason="spam",
            )
            for n in range(3)
        ]
        assert len(more) == 3  # four requests, calls and messages: the same queries as one

        with django_assert_max_num_queries(16):
            page = admin_client.get(support_url()).content.decode()

        assert "Answered" in page and "We are checking." in page and "Please check." in page
        assert "Secret" not in page
        assert "$0.60" in page

    def test_a_question_is_sent(self, admin_client, month):
        response = admin_client.post(
            support_url(), {"kind": "question", "body": "Why is the fee $199?"}
        )

        assert response.status_code == 302
        request = BillingRequest.objects.get()
        assert (request.kind, request.organization) == ("question", month.organization)

    def test_question_this_charge_prefills_the_invoice_and_line(self, admin_client, month):
        invoice_page = admin_client.get(
            reverse("billing:invoice", args=["acme", month.invoice.number])
        ).content.decode()
        assert "Question this charge" in invoice_page
        assert calls_url(month) in invoice_page

        url = f"{support_url()}?invoice={month.invoice.number}&line={month.line.pk}"
        page = admin_client.get(url).content.decode()
        assert f'value="{month.invoice.number}"' in page

        admin_client.post(
            url,
            {
                "kind": "dispute",
                "invoice": month.invoice.number,
                "line": month.line.pk,
                "amount": "0.30",
                "body": "Half of it.",
            },
        )
        request = BillingRequest.objects.get()
        assert (request.line, str(request.amount_in_question)) == (month.line, "$0.30")

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"kind": "dispute", "invoice": "INV-1999-000001"}, "has no invoice INV-1999-000001"),
            ({"kind": "dispute"}, "Choose the invoice you dispute."),
            ({"kind": "question", "body": ""}, "This field is required."),
            ({"kind": "refund please"}, "Select a valid choice."),
        ],
    )
    def test_bad_input_names_the_problem_and_writes_nothing(self, admin_client, data, error):
        response = admin_client.post(support_url(), {"body": "Hello", **data})

        assert response.status_code == 422
        assert error in response.content.decode()
        assert not BillingRequest.objects.exists()

    @pytest.mark.parametrize(
        ("upload", "error"),
        [
            (SimpleUploadedFile("x.pdf", b"<html>"), "x.pdf is not a PDF, PNG or JPEG file"),
            (
                SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024)),
                "an attachment is at most 5 MB",
            ),
        ],
    )
    def test_an_attachment_of_the_wrong_type_or_size_is_refused(self, admin_client, upload, error):
        response = admin_client.post(
            support_url(), {"kind": "question", "body": "See attached", "attachment": upload}
        )

        assert response.status_code == 422
        assert error in response.content.decode()
        assert not BillingRequest.objects.exists()

    def test_the_customer_replies(self, admin_client, dispute):
        url = reverse("billing:support_reply", args=["acme", dispute.pk])

        admin_client.post(url, {"body": "Any news?"})

        assert dispute.messages.last().body == "Any news?"

    def test_an_attachment_downloads_for_the_organization(self, admin_client, dispute):
        message = dispute.messages.get()

        response = admin_client.get(
            reverse("billing:support_attachment", args=["acme", message.pk])
        )

        assert response["Content-Type"] == "image/png"
        assert response["Content-Disposition"] == 'attachment; filename="proof.png"'

    def test_talk_to_us_opens_a_sales_request(self, admin_client):
        plans = admin_client.get(reverse("billing:plans", args=["acme"])).content.decode()
        assert "Talk to us" in plans and "support/?kind=sales" in plans

        page = admin_client.get(f"{support_url()}?kind=sales").content.decode()

        assert '<option value="sales" selected>' in page


class TestCallsOfAnOverageLine:
    def test_lists_the_months_calls_with_filters(
        self, admin_client, month, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(12):
            page = admin_client.get(calls_url(month)).content.decode()
        assert "4 calls" in page and "acme-call-1" in page

        short = admin_client.get(calls_url(month), {"max_seconds": 30}).content.decode()
        assert "2 calls" in short and "acme-call-1" not in short

        inbound = admin_client.get(calls_url(month), {"direction": "inbound"}).content.decode()
        assert "2 calls" in inbound and "acme-call-2" not in inbound

    def test_bad_filters_are_named(self, admin_client, month):
        page = admin_client.get(calls_url(month), {"min_seconds": "-1"}).content.decode()

        assert "Ensure this value is greater than or equal to 0." in page

    def test_pages(self, admin_client, month, monkeypatch):
        monkeypatch.setattr("usage.views.CALLS_PER_PAGE", 3)

        second = admin_client.get(calls_url(month), {"page": 2}).content.decode()

        assert "Page 2 of 2" in second and "acme-call-4" in second and "acme-call-1" not in second

    def test_downloads_as_csv(self, admin_client, month):
        response = admin_client.get(calls_url(month), {"format": "csv", "direction": "outbound"})

        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows[0] == [
            "call_id",
            "connected_at",
            "ai_employee",
            "direction",
            "billable_seconds",
        ]
        assert [(row[0], row[4]) for row in rows[1:]] == [
            ("acme-call-2", "300"),
            ("acme-call-4", "20"),
        ]

    def test_chosen_calls_are_disputed(self, admin_client, month):
        response = admin_client.post(
            calls_url(month),
            {
                "calls": ["acme-call-3", "acme-call-4"],
                "reason": "too_short",
                "body": "Nobody spoke.",
            },
        )

        assert response.status_code == 302
        request = BillingRequest.objects.get()
        assert (request.seconds_in_question, str(request.amount_in_question)) == (50, "$0.20")

    @pytest.mark.parametrize(
        ("calls", "error"),
        [([], "Choose at least one call."), (["other-call"], "Choose at least one call of")],
    )
    def test_no_call_or_a_call_of_another_month_is_refused(self, admin_client, month, calls, error):
        response = admin_client.post(
            calls_url(month), {"calls": calls, "reason": "spam", "body": "x"}
        )

        assert response.status_code == 422
        assert error in response.content.decode()
        assert not BillingRequest.objects.exists()

    def test_another_line_is_not_a_call_line(self, admin_client, month):
        fee = month.invoice.lines.get(kind="subscription")
        url = reverse("usage:line_calls", args=["acme", month.invoice.number, fee.pk])

        assert admin_client.get(url).status_code == 404


class TestAccess:
    @pytest.fixture
    def urls(self, month, dispute):
        message = dispute.messages.get()
        return [
            ("get", support_url()),
            ("post", support_url()),
            ("post", reverse("billing:support_reply", args=["acme", dispute.pk])),
            ("get", reverse("billing:support_attachment", args=["acme", message.pk])),
            ("get", calls_url(month)),
            ("get", f"{calls_url(month)}?format=csv"),
            ("post", calls_url(month)),
        ]

    def test_another_organizations_admin_gets_404_on_every_support_url(self, client, urls):
        outsider = MembershipFactory(organization=OrganizationFactory(), role=Membership.Role.ADMIN)
        sign_in(client, outsider.user)

        for method, url in urls:
            response = getattr(client, method)(url, {"body": "x", "kind": "question"})
            assert response.status_code == 404, url
        assert BillingRequest.objects.count() == 1

    def test_a_member_is_told_to_ask_an_administrator(self, client, month, urls):
        member = MembershipFactory(organization=month.organization, role=Membership.Role.MEMBER)
        sign_in(client, member.user)

        for method, url in urls:
            assert getattr(client, method)(url).status_code == 403, url

    def test_anonymous_visitors_are_sent_to_sign_in(self, client, urls):
        for method, url in urls:
            response = getattr(client, method)(url)
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_staff_read_but_do_not_write(self, client, urls, month):
        sign_in(client, StaffFactory(username="sam"))

        assert client.get(support_url()).status_code == 200
        assert client.get(calls_url(month)).status_code == 200
        assert client.post(support_url(), {"kind": "question", "body": "x"}).status_code == 403
        assert BillingRequest.objects.count() == 1

    def test_an_internal_notes_attachment_is_never_served_to_the_customer(
        self, admin_client, dispute
    ):
        note = services.billing_request_reply(
            request=dispute,
            author=StaffFactory(username="sam"),
            body="Carrier log",
            kind="internal",
            attachment=Attachment("log.pdf", b"%PDF-1.4"),
        )

        url = reverse("billing:support_attachment", args=["acme", note.pk])

        assert admin_client.get(url).status_code == 404
