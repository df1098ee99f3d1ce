"""Forms of the billing pages and the support admin. They parse input; the services decide."""

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


# --- the organization's own pages: changing plans and cancelling --------------------------


class PlanChangeForm(forms.Form):
    """The AI employees and phone numbers an admin lets go to fit a plan's lower limits."""

    deactivate_employee_ids = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    release_number_ids = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, preview=None, **kwargs):
        super().__init__(*args, **kwargs)
        employees = preview.active_employees if preview else []
        numbers = preview.held_numbers if preview else []
        self.fields["deactivate_employee_ids"].choices = [
            (
                employee.pk,
                f"{employee.name} · {employee.cost_center}"
                if employee.cost_center
                else employee.name,
            )
            for employee in employees
        ]
        self.fields["release_number_ids"].choices = [
            (
                number.pk,
                f"{number.number} · {number.employee.name}" if number.employee else number.number,
            )
            for number in numbers
        ]


class CancellationForm(forms.Form):
    REASONS = [
        ("too_expensive", "Too expensive"),
        ("missing_features", "Missing features"),
        ("switching_provider", "Switching to another provider"),
        ("not_using", "Not using it enough"),
        ("other", "Other"),
    ]

    reason = forms.ChoiceField(
        label="Why are you cancelling?", choices=REASONS, widget=forms.RadioSelect
    )
    detail = forms.CharField(
        label="Anything you would like to add? (optional)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    @property
    def reason_text(self) -> str:
        """The reason as the subscription keeps it: `Too expensive: the detail`."""
        label = dict(self.REASONS)[self.cleaned_data["reason"]]
        detail = self.cleaned_data["detail"].strip()
        return f"{label}: {detail}" if detail else label


class PromotionCodeForm(forms.Form):
    code = forms.CharField(label="Promotion code", max_length=40, strip=True)


class ReferralForm(forms.Form):
    """Which of the person's organizations joins through the referral link."""

    organization = forms.ChoiceField(label="Your organization")

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].choices = [(o.slug, o.name) for o in organizations]
