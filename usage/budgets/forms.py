"""Forms of the budgets page. They parse input; the services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms


class BudgetForm(forms.Form):
    monthly_budget = forms.DecimalField(
        label="Monthly budget",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text="Empty: no budget.",
    )
