"""Forms of the notification pages. They parse input; the services decide."""

from __future__ import annotations

from django import forms

from billing.models import Channel, NotificationPreference, Organization, WebhookEndpoint
from billing.notifications import kinds

Mode = NotificationPreference.Mode


def preference_field_name(kind: str, channel: str) -> str:
    return f"{kind}__{channel}"


class PreferencesForm(forms.Form):
    """A mode per kind and channel (a daily digest by e-mail only), the members who receive
    the e-mails, and whether the billing contacts receive them too."""

    audience = forms.ChoiceField(
        label="Who receives the e-mails",
        choices=Organization.NoticeAudience.choices,
        widget=forms.RadioSelect,
    )
    recipients = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, recipient_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recipients"].choices = [
            (choice.user_id, f"{choice.name} ({choice.email})") for choice in recipient_choices
        ]
        for kind in kinds.CHOOSABLE:
            for channel in Channel:
                modes = [Mode.OFF, Mode.ON] + ([Mode.DIGEST] if channel == Channel.EMAIL else [])
                self.fields[preference_field_name(kind, channel)] = forms.ChoiceField(
                    choices=[(mode.value, mode.label) for mode in modes]
                )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get(
            "audience"
        ) == Organization.NoticeAudience.CHOSEN_MEMBERS and not cleaned.get("recipients"):
            self.add_error(
                "recipients",
                "Choose at least one member to receive the e-mails, or send them to the "
                "billing contacts too.",
            )
        return cleaned

    @property
    def has_mode_errors(self) -> bool:
        return any(name not in ("audience", "recipients") for name in self.errors)

    def modes(self) -> dict[tuple[str, str], str]:
        return {
            (kind.value, channel.value): self.cleaned_data[preference_field_name(kind, channel)]
            for kind in kinds.CHOOSABLE
            for channel in Channel
        }


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="HTTPS address",
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/billing-events"}),
    )
    format = forms.ChoiceField(choices=WebhookEndpoint.Format.choices)


class MarkReadForm(forms.Form):
    """One notice (`notification`), or every one when it is empty."""

    notification = forms.IntegerField(required=False, min_value=1)
