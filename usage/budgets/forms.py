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


class ScenarioForm(forms.Form):
    """Read from the page's address (a question, nothing is written)."""

    calls_percent = forms.DecimalField(
        label="Calls grow by (%)",
        required=False,
        min_value=Decimal("-100"),
        max_value=Decimal("1000"),
        max_digits=6,
        decimal_places=2,
        help_text="A negative percent for fewer calls.",
    )
    more_employees = forms.IntegerField(
        label="More AI employees", required=False, min_value=0, max_value=1000
    )
