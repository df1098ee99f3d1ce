"""The caps form: the overage spend cap in money, call-time caps in minutes, one field per
AI employee and cost center on the page. It parses input; the service decides."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from usage.caps.selectors import SpendCapsOverview

MAX_MINUTES = (2**31 - 1) // 60


def _minutes_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=1, max_value=MAX_MINUTES, help_text="minutes"
    )


class SpendCapsForm(forms.Form):
    overage_spend = forms.DecimalField(
        label="Overage spend cap",
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
    )

    def __init__(self, *args, overview: SpendCapsOverview, **kwargs):
        initial = {
            "overage_spend": overview.overage_spend_cap.amount
            if overview.overage_spend_cap is not None
            else None
        }
        self.employee_fields: list[tuple[str, int]] = []
        self.cost_center_fields: list[tuple[str, str]] = []
        super().__init__(*args, initial=initial, **kwargs)
        self.overview = overview
        for state in overview.employees:
            name = f"employee_{state.key}"
            self.fields[name] = _minutes_field(state.name)
            self.initial[name] = state.limit_minutes
            self.employee_fields.append((name, state.key))
        # Cost centers are named in a hidden field beside their minutes, so a cost center
        # added while the page was open cannot shift a cap onto another one.
        for index, state in enumerate(overview.cost_centers):
            name = f"cost_center_{index}"
            self.fields[name] = _minutes_field(state.name)
            self.fields[f"{name}_name"] = forms.CharField(widget=forms.HiddenInput, max_length=100)
            self.initial[name] = state.limit_minutes
            self.initial[f"{name}_name"] = state.key
            self.cost_center_fields.append((name, state.key))

    def employee_rows(self):
        """Each AI employee's state with its field, for the page."""
        return [
            (state, self[name])
            for state, (name, _) in zip(self.overview.employees, self.employee_fields, strict=True)
        ]

    def cost_center_rows(self):
        return [
            (state, self[name])
            for state, (name, _) in zip(
                self.overview.cost_centers, self.cost_center_fields, strict=True
            )
        ]

    def employee_seconds(self) -> dict[int, int]:
        return {
            employee_id: self.cleaned_data[name] * 60
            for name, employee_id in self.employee_fields
            if self.cleaned_data.get(name)
        }

    def cost_center_seconds(self) -> dict[str, int]:
        return {
            self.cleaned_data[f"{name}_name"]: self.cleaned_data[name] * 60
            for name, _ in self.cost_center_fields
            if self.cleaned_data.get(name)
        }
