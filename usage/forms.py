"""Forms of the usage pages. Field names match the keyword arguments of the services."""

from django import forms

from billing.models import BillingRequest, Organization
from billing.web.attachments import AttachmentField
from usage.disputes.selectors import CallFilters
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


class CallFilterForm(PageForm):
    """The drill-down's filters; every field optional, each checked."""

    employee = forms.ModelChoiceField(
        queryset=AIEmployee.objects.none(),
        required=False,
        empty_label="Every AI employee",
        label="AI employee",
    )
    number = forms.CharField(
        required=False, max_length=16, validators=[E164], help_text="E.164, e.g. +14155550100"
    )
    direction = forms.ChoiceField(
        required=False,
        choices=[("", "Both directions"), ("inbound", "Inbound"), ("outbound", "Outbound")],
    )
    min_seconds = forms.IntegerField(required=False, min_value=0, label="At least (s)")
    max_seconds = forms.IntegerField(required=False, min_value=0, label="At most (s)")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["employee"].queryset = AIEmployee.objects.filter(organization=organization)

    def filters(self) -> CallFilters:
        data = self.cleaned_data
        return CallFilters(
            employee_id=data["employee"].pk if data.get("employee") else None,
            number=data.get("number") or "",
            direction=data.get("direction") or "",
            min_seconds=data.get("min_seconds"),
            max_seconds=data.get("max_seconds"),
        )


class CallIdsField(forms.Field):
    """The platform ids of the calls ticked in the list (the service checks each is one of
    the line's month)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [str(call_id)[:100] for call_id in value or []]

    def validate(self, value):
        if not value:
            raise forms.ValidationError("Choose at least one call.", code="required")


class CallDisputeForm(PageForm):
    """Chosen calls of a call overage line, disputed with one reason."""

    calls = CallIdsField()
    reason = forms.ChoiceField(choices=BillingRequest.Reason.choices)
    body = forms.CharField(
        label="Your message", widget=forms.Textarea(attrs={"rows": 4}), max_length=10_000
    )
    attachment = AttachmentField()
