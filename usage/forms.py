"""Forms of the usage pages. Field names match the keyword arguments of the services."""

from django import forms

from billing.models import Organization
from usage.models import E164, AIEmployee, PhoneNumberRate
from usage.selectors import answering_employees


class PageForm(forms.Form):
    """Labels read as plain headings above their fields, without a trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class EmployeeCreateForm(PageForm):
    name = forms.CharField(max_length=100)
    cost_center = forms.CharField(
        max_length=100,
        required=False,
        help_text="Team or project its call time is reported under.",
    )
    inbound_capable = forms.BooleanField(
        required=False, initial=True, label="Answers inbound calls (needs a phone number)"
    )


class PhoneNumberProvisionForm(PageForm):
    number = forms.CharField(
        max_length=16,
        validators=[E164],
        help_text="E.164: + then the country code and number, e.g. +14155550100.",
        widget=forms.TextInput(attrs={"placeholder": "+14155550100", "inputmode": "tel"}),
    )
    number_type = forms.ChoiceField(label="Type", choices=PhoneNumberRate.Type.choices)
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        initial="US",
        help_text="Two-letter ISO code, e.g. US.",
        error_messages={"invalid": "Enter a two-letter country code, e.g. US."},
    )
    region = forms.CharField(
        max_length=100, required=False, help_text="State or region, for its regulatory fee."
    )
    vanity = forms.BooleanField(required=False, label="Vanity number (monthly surcharge)")
    employee = forms.ModelChoiceField(
        queryset=AIEmployee.objects.none(),
        required=False,
        label="Answered by",
        empty_label="No one yet",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["employee"].queryset = answering_employees(organization=organization)

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()


class PhoneNumberAssignForm(forms.Form):
    employee = forms.ModelChoiceField(queryset=AIEmployee.objects.none(), required=False)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["employee"].queryset = answering_employees(organization=organization)
