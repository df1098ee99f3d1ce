"""Forms of the alerts page. They parse input; the services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from usage.models import AlertThreshold


class ThresholdAddForm(forms.Form):
    metric = forms.ChoiceField(label="Resource", choices=AlertThreshold.Metric.choices)
    unit = forms.ChoiceField(
        label="Alert at",
        choices=[
            (AlertThreshold.Unit.PERCENT, "% of the limit"),
            (AlertThreshold.Unit.ABSOLUTE, "an amount (minutes, GiB, money, count)"),
        ],
    )
    value = forms.DecimalField(
        label="Value", max_digits=14, decimal_places=2, min_value=Decimal("0.01")
    )


class ThresholdForm(forms.Form):
    """One threshold, named by what makes it unique."""

    metric = forms.ChoiceField(choices=AlertThreshold.Metric.choices)
    unit = forms.ChoiceField(choices=AlertThreshold.Unit.choices)
    value = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    action = forms.ChoiceField(choices=[("on", "on"), ("off", "off"), ("remove", "remove")])


class SnoozeForm(forms.Form):
    metric = forms.ChoiceField(choices=AlertThreshold.Metric.choices)
