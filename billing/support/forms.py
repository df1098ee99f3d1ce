"""The forms of billing requests: the customer's request and reply, staff's reply and
decisions. Each checks its own fields; the services check the rest."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from billing.models import BillingRequest
from billing.support.services import Attachment

MESSAGE = forms.Textarea(attrs={"rows": 5, "cols": 60})


class AttachmentField(forms.FileField):
    """An optional file, read whole; the service checks its type by content and its size."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            help_text="Optional: a PDF, PNG or JPEG of at most 5 MB.",
            widget=forms.ClearableFileInput(
                attrs={"accept": "application/pdf,image/png,image/jpeg"}
            ),
            **kwargs,
        )


def attachment_of(form: forms.Form) -> Attachment | None:
    upload = form.cleaned_data.get("attachment")
    if not upload:
        return None
    return Attachment(name=upload.name, content=upload.read())


class BillingRequestForm(forms.Form):
    """A new request from the support page, or about an invoice or one of its lines."""

    kind = forms.ChoiceField(
        label="What is it about?",
        choices=BillingRequest.Kind.choices,
        initial=BillingRequest.Kind.QUESTION,
    )
    invoice = forms.CharField(
        label="Invoice number",
        required=False,
        max_length=20,
        help_text="For a dispute or a copy: the number printed on the invoice, e.g. INV-2026-000123.",
    )
    line = forms.IntegerField(required=False, widget=forms.HiddenInput)
    amount = forms.DecimalField(
        label="Amount in question",
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="Leave empty to question the whole line.",
    )
    subject = forms.CharField(required=False, max_length=200)
    body = forms.CharField(label="Your message", widget=MESSAGE, max_length=10_000)
    attachment = AttachmentField()


class CallDisputeForm(forms.Form):
    """Chosen calls of a call overage line, disputed with one reason."""

    calls = forms.MultipleChoiceField(label="Calls", widget=forms.CheckboxSelectMultiple)
    reason = forms.ChoiceField(choices=BillingRequest.Reason.choices)
    body = forms.CharField(label="Your message", widget=MESSAGE, max_length=10_000)
    attachment = AttachmentField()

    def __init__(self, *args, call_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["calls"].choices = [(call_id, call_id) for call_id in call_ids]


class CustomerReplyForm(forms.Form):
    body = forms.CharField(label="Your reply", widget=MESSAGE, max_length=10_000)
    attachment = AttachmentField()


class StaffReplyForm(forms.Form):
    body = forms.CharField(label="Message", widget=MESSAGE, max_length=10_000)
    internal = forms.BooleanField(
        label="Internal note",
        required=False,
        help_text="Seen by staff only; the customer is not told.",
    )
    attachment = AttachmentField()


class ApprovalForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="At most the amount in question, in the invoice's currency.",
    )
    refund = forms.TypedChoiceField(
        label="Give it back",
        choices=[
            ("false", "Credit the customer's balance (pays the next invoices)"),
            ("true", "Refund it to the card or bank account that paid the invoice"),
        ],
        coerce=lambda value: value == "true",
        initial="false",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Sent to the customer and printed on the credit note.",
    )


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label="Explanation",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Sent to the customer.",
    )
