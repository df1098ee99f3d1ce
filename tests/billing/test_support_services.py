import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.lifecycle.disputes import billing_request_resolve
from billing.models import BillingRequest, BillingRequestMessage, CreditNote, Notification
from billing.support import services
from billing.support.services import Attachment
from payments import services as payment_services
from payments.models import PaymentAttempt, Refund
from tests.billing.support_helpers import MAR_16, overage_month
from tests.factories import (
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    card,
)
from tests.helpers import usd

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def month():
    return overage_month()


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def staff():
    # Finance: answers, and approves with credit notes and refunds.
    return StaffFactory(username="sam", roles=["Finance"])


def open_dispute(month, alice, **kwargs):
    fields = {
        "organization": month.organization,
        "kind": "dispute",
        "body": "These calls never reached anyone.",
        "actor": alice,
        "invoice": month.invoice,
        "line": month.line,
        "now": MAR_16,
    }
    return services.billing_request_open(**(fields | kwargs))


def customer_notices(organization):
    return list(
        Notification.objects.filter(organization=organization, kind="billing_request").order_by(
            "pk"
        )
    )


class TestOpening:
    def test_a_line_is_questioned_in_full_by_default(self, month, alice):
        request = open_dispute(month, alice)

        assert request.amount_in_question == usd("0.60")
        assert request.subject == f"Call overage on {month.invoice.number}"
        assert (request.status, request.opened_by, request.invoice) == (
            "open",
            alice,
            month.invoice,
        )
        [message] = request.messages.all()
        assert (message.kind, message.body) == ("customer", "These calls never reached anyone.")

    def test_part_of_a_line_may_be_questioned_but_never_more_than_it_charged(self, month, alice):
        assert open_dispute(month, alice, amount=usd("0.25")).amount_in_question == usd("0.25")

        with pytest.raises(BillingError) as refused:
            open_dispute(month, alice, amount=usd("0.61"))

        assert refused.value.code == "amount_in_question_too_large"
        assert refused.value.details == {"field": "amount"}
        assert BillingRequest.objects.count() == 1

    def test_chosen_calls_are_priced_at_the_invoices_own_rate(self, month, alice):
        chosen = [month.calls["call-3"], month.calls["call-4"]]

        request = open_dispute(month, alice, calls=chosen, reason="too_short")

        # 30 s + 20 s at the invoice's $0.004/s
        assert request.seconds_in_question == 50
        assert request.amount_in_question == usd("0.20")
        assert [call.billable_seconds for call in request.disputed_calls.all()] == [30, 20]
        assert request.disputed_calls.first().platform_call_id == chosen[0].platform_call_id

    def test_calls_never_question_more_than_the_line_charged(self, month, alice):
        request = open_dispute(month, alice, calls=list(month.calls.values()), reason="duplicate")

        # 750 s at $0.004 is $3.00, but only the 150 s over the allowance were charged
        assert request.amount_in_question == usd("0.60")

    @pytest.mark.parametrize(
        ("change", "code", "field"),
        [
            ({"reason": ""}, "dispute_reason_required", "reason"),
            ({"reason": "bad_mood"}, "dispute_reason_required", "reason"),
            ({"body": "  "}, "message_required", "body"),
            ({"kind": "question"}, "not_a_call_line", "line"),
            ({"kind": "complaint"}, "request_kind_invalid", "kind"),
        ],
    )
    def test_a_call_dispute_without_what_it_needs_is_refused(
        self, month, alice, change, code, field
    ):
        fields = {"calls": [month.calls["call-3"]], "reason": "spam"} | change

        with pytest.raises(BillingError) as refused:
            open_dispute(month, alice, **fields)

        assert (refused.value.code, refused.value.details) == (code, {"field": field})
        assert not BillingRequest.objects.exists()

    def test_another_organizations_invoice_cannot_be_questioned(self, month, alice):
        other = OrganizationFactory()

        with pytest.raises(BillingError) as refused:
            open_dispute(month, alice, organization=other)

        assert refused.value.code == "invoice_not_found"
        assert not BillingRequest.objects.exists()

    def test_a_question_needs_no_invoice(self, month, alice):
        request = services.billing_request_open(
            organization=month.organization,
            kind="sales",
            body="We need 40 AI employees.",
            actor=alice,
            now=MAR_16,
        )

        assert (request.subject, request.amount_in_question) == ("Enterprise pricing (sales)", None)


class TestAttachments:
    def test_a_pdf_is_stored_under_our_name_with_the_type_its_content_shows(self, month, alice):
        request = open_dispute(month, alice, attachment=Attachment("statement.pdf", PDF))

        message = request.messages.get()
        assert (message.attachment_name, message.attachment_type) == (
            "statement.pdf",
            "application/pdf",
        )
        assert message.attachment.name.endswith(f"request-{request.pk}.pdf")
        assert message.attachment.read() == PDF

    def test_the_content_decides_the_type_not_the_name(self, month, alice):
        request = open_dispute(month, alice, attachment=Attachment("screenshot.pdf", PNG))

        assert request.messages.get().attachment_type == "image/png"

    def test_a_page_disguised_as_a_pdf_is_refused(self, month, alice):
        with pytest.raises(BillingError) as refused:
            open_dispute(
                month, alice, attachment=Attachment("invoice.pdf", b"<html><script>x</script>")
            )

        assert refused.value.code == "attachment_type"
        assert "invoice.pdf is not a PDF, PNG or JPEG file" in refused.value.message
        assert not BillingRequest.objects.exists()

    def test_more_than_five_megabytes_is_refused(self, month, alice):
        too_large = PDF + b"0" * (5 * 1024 * 1024)

        with pytest.raises(BillingError) as refused:
            open_dispute(month, alice, attachment=Attachment("scan.pdf", too_large))

        assert refused.value.code == "attachment_too_large"
        assert "at most 5 MB" in refused.value.message
        assert not BillingRequest.objects.exists()


class TestConversation:
    def test_a_staff_reply_answers_and_tells_the_customer_an_internal_note_does_not(
        self, month, alice, staff, django_capture_on_commit_callbacks, mailoutbox
    ):
        request = open_dispute(month, alice)
        answer_at = MAR_16 + dt.timedelta(hours=2)

        with django_capture_on_commit_callbacks(execute=True):
            services.billing_request_reply(
                request=request, author=staff, body="Checked with the carrier.", kind="internal"
            )
            services.billing_request_reply(
                request=request,
                author=staff,
                body="We are looking into these calls.",
                kind="staff",
                now=answer_at,
            )

        request.refresh_from_db()
        assert (request.status, request.first_response_at) == ("answered", answer_at)
        [notice] = customer_notices(month.organization)
        assert "We are looking into these calls." in notice.summary
        assert "Checked with the carrier" not in mailoutbox[-1].body

    def test_the_customers_reply_puts_it_back_in_the_queue(self, month, alice, staff):
        request = open_dispute(month, alice)
        services.billing_request_reply(
            request=request, author=staff, body="Which calls?", kind="staff"
        )

        services.billing_request_reply(
            request=request, author=alice, body="The short ones.", kind="customer", now=MAR_16
        )

        request.refresh_from_db()
        assert request.status == "open"


class TestDecisions:
    def test_a_partial_approval_credits_exactly_that_amount_to_the_balance(
        self, month, alice, staff, django_capture_on_commit_callbacks
    ):
        request = open_dispute(month, alice)
        before = invoicing_selectors.organization_balance(organization=month.organization)

        with django_capture_on_commit_callbacks(execute=True):
            billing_request_resolve(
                request=request,
                amount=usd("0.35"),
                reason="Two calls hit voicemail.",
                refund=False,
                actor=staff,
                now=MAR_16,
            )

        request.refresh_from_db()
        credit_note = CreditNote.objects.get(invoice=month.invoice)
        assert credit_note.amount == usd("0.35") == request.approved_amount
        assert request.credit_note == credit_note and not request.refunded
        assert (request.status, request.decided_by, request.decided_at) == (
            "approved",
            staff,
            MAR_16,
        )
        assert request.decision_reason == "Two calls hit voicemail."
        after = invoicing_selectors.organization_balance(organization=month.organization)
        assert after - before == usd("0.35")
        [notice] = customer_notices(month.organization)
        assert credit_note.number in notice.summary and "$0.35" in notice.summary

    def test_a_partial_approval_refunds_exactly_that_amount_to_the_card_that_paid(
        self, alice, staff
    ):
        organization = OrganizationFactory()
        subscription = SubscriptionFactory(
            organization=organization, plan=PlanFactory(), start=MAR_16, now=MAR_16
        )
        card(organization, now=MAR_16)
        invoice = subscription.invoices.get()
        payment_services.invoice_collect(invoice=invoice, now=MAR_16)
        line = invoice.lines.get(kind="subscription")
        request = services.billing_request_open(
            organization=organization,
            kind="dispute",
            body="We were charged twice this month.",
            actor=alice,
            invoice=invoice,
            line=line,
            now=MAR_16,
        )
        before = invoicing_selectors.organization_balance(organization=organization)

        billing_request_resolve(
            request=request,
            amount=usd("50.00"),
            reason="Half the month was unusable.",
            refund=True,
            actor=staff,
            now=MAR_16,
        )

        request.refresh_from_db()
        refund = Refund.objects.get()
        assert refund.amount == usd("50.00") == request.credit_note.amount
        assert refund.attempt == PaymentAttempt.objects.get(status="succeeded")
        assert request.refunded
        assert invoicing_selectors.organization_balance(organization=organization) == before

    def test_a_refund_needs_an_invoice_paid_by_a_charge(self, month, alice, staff):
        request = open_dispute(month, alice)

        with pytest.raises(BillingError) as refused:
            billing_request_resolve(
                request=request, amount=usd("0.10"), reason="x", refund=True, actor=staff
            )

        assert refused.value.code == "not_refundable"
        assert not CreditNote.objects.exists()

    @pytest.mark.parametrize("amount", ["0.61", "0.00", "-1.00"])
    def test_more_than_is_in_question_or_nothing_is_refused(self, month, alice, staff, amount):
        request = open_dispute(month, alice)

        with pytest.raises(BillingError) as refused:
            billing_request_resolve(
                request=request, amount=usd(amount), reason="Fair.", refund=False, actor=staff
            )

        assert (refused.value.code, refused.value.details) == (
            "approval_too_large",
            {"field": "amount"},
        )
        assert not CreditNote.objects.exists()

    def test_a_request_is_decided_once(self, month, alice, staff):
        request = open_dispute(month, alice)
        billing_request_resolve(
            request=request, amount=usd("0.60"), reason="Fair.", refund=False, actor=staff
        )

        with pytest.raises(BillingError) as refused:
            services.billing_request_decline(request=request, reason="No.", actor=staff)

        assert refused.value.code == "request_closed"
        assert CreditNote.objects.count() == 1

    def test_a_decline_explains_itself_to_the_customer(
        self, month, alice, staff, django_capture_on_commit_callbacks
    ):
        request = open_dispute(month, alice)
        with pytest.raises(BillingError) as refused:
            services.billing_request_decline(request=request, reason=" ", actor=staff)
        assert refused.value.code == "reason_required"

        with django_capture_on_commit_callbacks(execute=True):
            services.billing_request_decline(
                request=request,
                reason="The calls lasted as billed: the recordings are 30 s and 20 s long.",
                actor=staff,
                now=MAR_16,
            )

        request.refresh_from_db()
        assert (request.status, request.decided_by, request.decided_at) == (
            "declined",
            staff,
            MAR_16,
        )
        assert not CreditNote.objects.exists()
        last = request.messages.last()
        assert (last.kind, last.body) == (
            "staff",
            "Declined: The calls lasted as billed: the recordings are 30 s and 20 s long.",
        )
        [notice] = customer_notices(month.organization)
        assert "declined" in notice.title and "recordings are 30 s" in notice.summary

    def test_small_call_disputes_are_approved_at_once_when_the_setting_allows(
        self, month, alice, settings
    ):
        settings.BILLING_DISPUTE_AUTO_APPROVE_UP_TO = Decimal("0.50")

        small = open_dispute(month, alice, calls=[month.calls["call-3"]], reason="spam")
        larger = open_dispute(month, alice, calls=list(month.calls.values()), reason="malfunction")

        assert (small.status, small.auto_approved, small.decided_by) == ("approved", True, None)
        assert small.credit_note.amount == usd("0.12")
        assert larger.status == "open"

    def test_a_small_dispute_the_invoice_cannot_credit_waits_for_staff(
        self, month, alice, settings
    ):
        settings.BILLING_DISPUTE_AUTO_APPROVE_UP_TO = Decimal("0.50")
        invoice = month.invoice
        invoicing_services.credit_note_issue(
            invoice=invoice, amount=invoice.total + invoice.credit_applied, reason="Goodwill"
        )

        request = open_dispute(month, alice, calls=[month.calls["call-3"]], reason="spam")

        assert (request.status, request.credit_note) == ("open", None)
        assert CreditNote.objects.count() == 1

    def test_without_the_setting_nothing_is_approved_at_once(self, month, alice):
        request = open_dispute(month, alice, calls=[month.calls["call-3"]], reason="spam")

        assert request.status == "open" and not CreditNote.objects.exists()


class TestResponseTarget:
    def test_one_business_day_skips_the_weekend_in_the_organizations_timezone(self, alice):
        month = overage_month(organization=OrganizationFactory(timezone="Asia/Tokyo"))
        # Friday 20 Mar 2026, 20:00 in Tokyo (11:00 UTC)
        friday_evening = dt.datetime(2026, 3, 20, 11, 0, tzinfo=dt.UTC)

        request = open_dispute(month, alice, now=friday_evening)

        # Monday 23 Mar, 20:00 in Tokyo: Saturday and Sunday there do not count
        assert request.respond_by == dt.datetime(2026, 3, 23, 11, 0, tzinfo=dt.UTC)

    def test_priority_support_answers_within_hours_counted_on_weekdays(self, alice):
        month = overage_month(organization=OrganizationFactory(timezone="Pacific/Auckland"))
        month.invoice.subscription.plan.features.add(FeatureFactory(code="priority_support"))
        # Friday 20 Mar 2026, 22:00 in Auckland (09:00 UTC, NZDT +13)
        friday_late = dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC)

        request = open_dispute(month, alice, now=friday_late)

        # 2 hours on Friday, 2 on Monday: Monday 23 Mar, 02:00 in Auckland
        assert request.respond_by == dt.datetime(2026, 3, 22, 13, 0, tzinfo=dt.UTC)


class TestEscalation:
    @pytest.fixture
    def supervisor(self):
        supervisor = UserFactory(username="sue", is_staff=True, email="sue@example.com")
        supervisor.groups.add(Group.objects.get(name="Billing supervisors"))  # made by a migration
        return supervisor

    def test_an_unanswered_request_past_its_target_is_escalated_once(
        self, month, alice, supervisor, mailoutbox, django_capture_on_commit_callbacks
    ):
        request = open_dispute(month, alice)  # Monday 10:00 UTC, due Tuesday 10:00
        with django_capture_on_commit_callbacks(execute=True):
            assert (
                services.billing_requests_escalate_if_needed(
                    now=request.respond_by - dt.timedelta(seconds=1)
                )
                == 0
            )
            assert services.billing_requests_escalate_if_needed(now=request.respond_by) == 1
            assert (
                services.billing_requests_escalate_if_needed(
                    now=request.respond_by + dt.timedelta(hours=1)
                )
                == 0
            )

        request.refresh_from_db()
        assert request.escalated_at == request.respond_by
        [mail] = mailoutbox
        assert mail.to == ["sue@example.com"]
        assert f"Billing request #{request.pk}" in mail.subject
        assert "passed its response target" in mail.subject

    def test_an_answered_request_is_not_escalated(self, month, alice, staff, supervisor):
        request = open_dispute(month, alice)
        services.billing_request_reply(request=request, author=staff, body="On it.", kind="staff")

        assert (
            services.billing_requests_escalate_if_needed(
                now=request.respond_by + dt.timedelta(days=3)
            )
            == 0
        )


def test_internal_notes_are_never_in_what_the_customer_sees(month, alice, staff):
    from billing.support import selectors

    request = open_dispute(month, alice)
    services.billing_request_reply(request=request, author=staff, body="Secret.", kind="internal")
    services.billing_request_reply(request=request, author=staff, body="Hello.", kind="staff")

    [shown] = selectors.billing_requests_for(organization=month.organization)

    assert [message.body for message in shown.conversation] == [
        "These calls never reached anyone.",
        "Hello.",
    ]
    assert BillingRequestMessage.objects.count() == 3
