"""Forms of the budgets page. They parse input; the services decide."""

from __future__ import annotations

from decimal import Decimal

from django import forms


def _amount_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )


class BudgetForm(forms.Form):
    """The organization's budget, and one field per cost center (named in a hidden field
    beside it, so a cost center added while the page was open cannot shift a budget)."""

    monthly_budget = _amount_field("Monthly budget")

    def __init__(self, *args, cost_centers, **kwargs):
        super().__init__(*args, **kwargs)
        self.cost_center_fields = []
        for index, item in enumerate(cost_centers):
            name = f"cost_center_{index}"
            self.fields[name] = _amount_field(item.cost_center)
            self.fields[f"{name}_name"] = forms.CharField(widget=forms.HiddenInput, max_length=100)
            self.initial.setdefault(name, item.budget.amount.amount if item.budget else None)
            self.initial[f"{name}_name"] = item.cost_center
            self.cost_center_fields.append((item, name))

    def cost_center_rows(self):
        return [(item, self[name]) for item, name in self.cost_center_fields]

    def cost_center_amounts(self) -> dict[str, Decimal]:
        return {
            self.cleaned_data[f"{name}_name"]: self.cleaned_data[name]
            for _, name in self.cost_center_fields
            if self.cleaned_data.get(name)
        }


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
