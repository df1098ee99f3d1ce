"""Forms of the support admin's billing pages. They parse input; the services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from billing.models import BalanceEntry, InvoiceLine, TaxRate

GRANTABLE_CREDITS = (
    BalanceEntry.Kind.PROMOTIONAL,
    BalanceEntry.Kind.REFERRAL,
    BalanceEntry.Kind.GOODWILL,
)


class InvoiceVoidForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept on the invoice and shown to the customer.",
    )


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In the invoice's currency; credited to the customer's balance.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Printed on the credit note and the invoice.",
    )


class BalanceCreditGrantForm(forms.ModelForm):
    """A credit staff give an organization; the amount is in the organization's currency."""

    kind = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in GRANTABLE_CREDITS],
        initial=BalanceEntry.Kind.GOODWILL,
    )
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In the organization's currency. Pays its next invoices, after tax.",
    )

    class Meta:
        model = BalanceEntry
        fields = ("organization", "kind", "description")
        help_texts = {"description": "Shown to the customer, e.g. “Sorry for the outage”."}


class TaxRateForm(forms.ModelForm):
    applies_to = forms.MultipleChoiceField(
        label="Charged on",
        choices=[(kind, InvoiceLine.Kind(kind).label) for kind in InvoiceLine.CHARGES],
        widget=forms.CheckboxSelectMultiple,
        help_text="The kinds of invoice line it is charged on.",
    )

    class Meta:
        model = TaxRate
        fields = ("name", "country", "region", "percentage", "applies_to", "is_active")
