"""The forms of billing requests: the customer's request and reply, staff's reply and
decisions. Each checks its own fields; the services check the rest."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from billing.models import BillingRequest
from billing.web.attachments import AttachmentField

MESSAGE = forms.Textarea(attrs={"rows": 5, "cols": 60})


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
