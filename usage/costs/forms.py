from __future__ import annotations

from django import forms

from usage.costs.selectors import month_parse
from usage.models import CostAllocationRule


class CostMonthForm(forms.Form):
    """`?month=YYYY-MM`; empty for the latest invoiced month."""

    month = forms.CharField(required=False, max_length=7)

    def clean_month(self):
        value = self.cleaned_data["month"].strip()
        if not value:
            return None
        try:
            return month_parse(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class AllocationRuleForm(forms.Form):
    fixed_fee = forms.ChoiceField(
        label="Split the plan's fee", choices=CostAllocationRule.FixedFee.choices
    )
    cost_center = forms.CharField(
        label="Cost center (for “All to one cost center”)", required=False, max_length=100
    )

    def clean(self):
        cleaned = super().clean()
        to_one = cleaned.get("fixed_fee") == CostAllocationRule.FixedFee.COST_CENTER
        if to_one and not cleaned.get("cost_center", "").strip():
            self.add_error("cost_center", "Name the cost center that receives the whole fee.")
        if not to_one and cleaned.get("cost_center", "").strip():
            self.add_error("cost_center", "A cost center is named only to give it the whole fee.")
        return cleaned
