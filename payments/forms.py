"""Forms of the payment-methods page. A card number, CVC or bank account number lives only
in the request being handled: it is never rendered back, stored or logged."""

from __future__ import annotations

import re

from django import forms
from django.utils import timezone

from payments.gateways import luhn_valid


class PageForm(forms.Form):
    """Labels read as plain headings above their fields, without a trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class UnechoedInput(forms.TextInput):
    """A text input that never sends its value back to the browser: a form shown again
    after an error asks for the number afresh instead of putting it in the page."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


def _digits_input(**attrs) -> UnechoedInput:
    return UnechoedInput(attrs={"inputmode": "numeric", "spellcheck": "false", **attrs})


# No month is preselected: a silent "01" would list the card with a wrong expiry.
MONTHS = [("", "Month"), *((month, f"{month:02d}") for month in range(1, 13))]


class BillingDetailsForm(PageForm):
    """The expiry and billing address: what can change on a card without a new number."""

    exp_month = forms.TypedChoiceField(
        label="Expiry month",
        choices=MONTHS,
        coerce=int,
        widget=forms.Select(attrs={"autocomplete": "cc-exp-month"}),
    )
    exp_year = forms.IntegerField(
        label="Expiry year",
        min_value=0,
        max_value=2100,
        widget=forms.NumberInput(attrs={"placeholder": "2030", "autocomplete": "cc-exp-year"}),
    )
    billing_name = forms.CharField(
        label="Cardholder name",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "cc-name"}),
    )
    billing_address = forms.CharField(
        label="Billing address",
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    billing_postal_code = forms.CharField(
        label="Postal code",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
    billing_country = forms.RegexField(
        label="Country",
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        initial="US",
        help_text="Two-letter ISO code, e.g. US.",
        error_messages={"invalid": "Enter a two-letter country code, e.g. US."},
        widget=forms.TextInput(attrs={"autocomplete": "country"}),
    )

    def __init__(self, *args, expiry_required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not expiry_required:  # bank accounts do not expire
            del self.fields["exp_month"], self.fields["exp_year"]
            self.fields["billing_name"].label = "Account holder"

    def clean_exp_year(self) -> int:
        year = self.cleaned_data["exp_year"]
        return 2000 + year if year < 100 else year  # "30" on the card means 2030

    def clean_billing_country(self) -> str:
        return self.cleaned_data["billing_country"].upper()

    def clean(self):
        cleaned = super().clean()
        month, year = cleaned.get("exp_month"), cleaned.get("exp_year")
        today = timezone.now().date()
        if month and year and (year, month) < (today.year, today.month):
            self.add_error("exp_year", "This card has expired: check the date on the card.")
        return cleaned


class CardForm(BillingDetailsForm):
    number = forms.CharField(
        label="Card number",
        max_length=30,
        widget=_digits_input(autocomplete="cc-number", placeholder="4242 4242 4242 4242"),
    )
    cvc = forms.CharField(
        label="Security code (CVC)",
        max_length=4,
        widget=_digits_input(autocomplete="cc-csc", placeholder="123", maxlength="4"),
    )
    make_default = forms.BooleanField(label="Make it the default payment method", required=False)

    field_order = ["number", "exp_month", "exp_year", "cvc", "billing_name"]

    def clean_number(self) -> str:
        number = re.sub(r"[\s-]", "", self.cleaned_data["number"])
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise forms.ValidationError("Enter the card number: 12 to 19 digits.")
        if not luhn_valid(number):
            raise forms.ValidationError("This card number has a typo: check the digits.")
        return number

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise forms.ValidationError("Enter the 3 or 4 digits of the security code.")
        return cvc

    def clean(self):
        cleaned = super().clean()
        number, cvc = cleaned.get("number", ""), cleaned.get("cvc", "")
        # American Express prints 4 digits on the front; the others 3 on the back.
        expected = 4 if number[:2] in ("34", "37") else 3
        if number and cvc and len(cvc) != expected:
            self.add_error("cvc", f"This card's security code has {expected} digits.")
        return cleaned


def _routing_checksum_valid(routing_number: str) -> bool:
    """The ABA check digit of a US routing number."""
    digits = [int(d) for d in routing_number]
    return sum(weight * d for weight, d in zip([3, 7, 1] * 3, digits, strict=True)) % 10 == 0


class BankAccountForm(PageForm):
    billing_name = forms.CharField(label="Account holder", max_length=200)
    routing_number = forms.RegexField(
        label="Routing number",
        regex=r"^\d{9}$",
        error_messages={"invalid": "Enter the 9-digit routing number."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "110000000"}),
    )
    account_number = forms.RegexField(
        label="Account number",
        regex=r"^\d{4,17}$",
        error_messages={"invalid": "Enter the account number: 4 to 17 digits."},
        widget=_digits_input(placeholder="000123456789"),
    )
    make_default = forms.BooleanField(label="Make it the default payment method", required=False)

    def clean_routing_number(self) -> str:
        routing_number = self.cleaned_data["routing_number"]
        if not _routing_checksum_valid(routing_number):
            raise forms.ValidationError("This routing number has a typo: check the digits.")
        return routing_number


class StripeMethodForm(forms.Form):
    """What the browser posts after Stripe's Payment Element has created the method."""

    payment_method_id = forms.RegexField(regex=r"^pm_[A-Za-z0-9_]+$", max_length=100)
    make_default = forms.BooleanField(required=False)
