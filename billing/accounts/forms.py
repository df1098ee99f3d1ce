"""The billing details form. It parses input; the service validates and records."""

from __future__ import annotations

from django import forms

from billing.accounts.selectors import BILLING_DETAILS
from billing.models import Organization


class BillingDetailsForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = BILLING_DETAILS
        labels = {"billing_emails": "Billing contacts"}
        help_texts = {
            "billing_emails": "E-mail addresses that receive invoices and billing notices, "
            "separated by commas.",
            "country": "Two letters (ISO 3166-1), e.g. US, GB, DE: it decides the taxes.",
        }
        widgets = {"billing_emails": forms.Textarea(attrs={"rows": 2})}

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()
