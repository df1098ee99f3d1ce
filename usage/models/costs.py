"""Cost control: how a month's invoice is split by team and AI employee, spend caps and budgets, with their change histories."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField

from billing.models import AppendOnly, Invoice, Organization
from usage.models.roster import AIEmployee
from usage.models.tokens import ServiceToken


class CostAllocationRule(models.Model):
    """How an organization splits its fixed charges (the plan's fee, prorations) among its
    cost centers and AI employees. Usage goes by call time and numbers to whom they answer,
    whatever the rule. Without a row, the fee goes by share of call time."""

    class FixedFee(models.TextChoices):
        SECONDS = "seconds", "By share of call time"
        EQUALLY = "equally", "Equally among the active AI employees"
        COST_CENTER = "cost_center", "All to one cost center"

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="cost_allocation_rule"
    )
    fixed_fee = models.CharField(max_length=20, choices=FixedFee.choices, default=FixedFee.SECONDS)
    cost_center = models.CharField(
        max_length=100, blank=True, help_text="Receives the whole fee under `cost_center`."
    )
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(fixed_fee="cost_center", cost_center__gt="")
                | (~Q(fixed_fee="cost_center") & Q(cost_center="")),
                name="cost_center_named_for_its_rule_only",
            )
        ]

    def __str__(self) -> str:
        if self.fixed_fee == self.FixedFee.COST_CENTER:
            return f"Fixed fee to {self.cost_center}"
        return self.get_fixed_fee_display()


class CostShare(models.Model):
    """A cost center's or AI employee's part of the invoice that closed a usage month, frozen
    when it was issued: later re-tagging or renaming rewrites nothing. The shares of an
    invoice add up to its total to the cent."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="cost_shares"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="cost_shares")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    month = models.DateField(
        help_text="The first day of the local month the usage month starts in."
    )
    cost_center = models.CharField(max_length=100, blank=True)
    employee = models.ForeignKey(
        AIEmployee, null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_shares"
    )
    employee_name = models.CharField(
        max_length=100, blank=True, help_text="Empty for what goes to the cost center itself."
    )
    call_seconds = models.PositiveBigIntegerField(default=0)
    usage = MoneyField(max_digits=12, decimal_places=2, help_text="Overage, by call time.")
    numbers = MoneyField(max_digits=12, decimal_places=2, help_text="Fees of its numbers.")
    fixed = MoneyField(max_digits=12, decimal_places=2, help_text="Plan fee and prorations.")
    adjustments = MoneyField(
        max_digits=12,
        decimal_places=2,
        help_text="Its part of the discount, taxes and credits, in proportion to its charges.",
    )
    total = MoneyField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["cost_center", "employee_name", "pk"]
        indexes = [models.Index(fields=["organization", "month"])]

    def __str__(self) -> str:
        who = self.employee_name or "the cost center"
        return f"{self.cost_center or 'Unassigned'} / {who}: {self.total}"


class SpendCap(models.Model):
    """A hard monthly limit the organization sets on itself, checked before every call: its
    overage spend (money), or the call time of one AI employee or one cost center (seconds).
    One row per thing capped; no row, no cap. Every change is kept in `SpendCapChange`."""

    class Scope(models.TextChoices):
        OVERAGE_SPEND = "overage_spend", "Overage spend"
        EMPLOYEE = "employee", "AI employee's call time"
        COST_CENTER = "cost_center", "Cost center's call time"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="spend_caps"
    )
    scope = models.CharField(max_length=20, choices=Scope.choices)
    employee = models.ForeignKey(
        AIEmployee, null=True, blank=True, on_delete=models.CASCADE, related_name="spend_caps"
    )
    cost_center = models.CharField(max_length=100, blank=True)
    overage_limit = MoneyField(max_digits=12, decimal_places=2, null=True, blank=True)
    call_seconds_limit = models.PositiveIntegerField(null=True, blank=True)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["scope", "cost_center", "employee__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(scope="overage_spend"),
                name="one_overage_spend_cap",
            ),
            models.UniqueConstraint(
                fields=["employee"], condition=Q(scope="employee"), name="one_cap_per_employee"
            ),
            models.UniqueConstraint(
                fields=["organization", "cost_center"],
                condition=Q(scope="cost_center"),
                name="one_cap_per_cost_center",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        scope="overage_spend",
                        overage_limit__gte=0,
                        employee__isnull=True,
                        cost_center="",
                        call_seconds_limit__isnull=True,
                    )
                    | Q(
                        scope="employee",
                        employee__isnull=False,
                        cost_center="",
                        call_seconds_limit__isnull=False,
                        overage_limit__isnull=True,
                    )
                    | (
                        Q(
                            scope="cost_center",
                            employee__isnull=True,
                            call_seconds_limit__isnull=False,
                            overage_limit__isnull=True,
                        )
                        & ~Q(cost_center="")
                    )
                ),
                name="spend_cap_limits_its_scope",
            ),
        ]

    def __str__(self) -> str:
        if self.scope == self.Scope.OVERAGE_SPEND:
            return f"Overage spend at most {self.overage_limit}"
        subject = self.employee if self.scope == self.Scope.EMPLOYEE else self.cost_center
        return f"{subject}: at most {self.call_seconds_limit} s of calls"


class SpendCapChange(AppendOnly):
    """One change of a spend cap: what, from which limit to which (empty: no cap), who and
    when. Append-only: the record of who decided what."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="spend_cap_changes"
    )
    scope = models.CharField(max_length=20, choices=SpendCap.Scope.choices)
    employee = models.ForeignKey(
        AIEmployee, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.CharField(
        max_length=200, help_text="What was capped, as it was named at the time."
    )
    previous_limit = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Money for overage spend, seconds for call time; empty: no cap.",
    )
    new_limit = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_by_token = models.ForeignKey(
        ServiceToken,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="The platform API's token, when the change came through it.",
    )

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["organization", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.subject}: {self.previous_limit} → {self.new_limit}"


class Budget(models.Model):
    """Money the organization means to spend in a usage month: as a whole (no cost center)
    or for one cost center. Alerts fire at its thresholds, once per threshold and month."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="budgets")
    cost_center = models.CharField(
        max_length=100, blank=True, help_text="Empty: the organization as a whole."
    )
    amount = MoneyField(max_digits=12, decimal_places=2)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["cost_center"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "cost_center"], name="one_budget_per_cost_center"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.cost_center or 'Organization'}: {self.amount} a month"


class BudgetChange(AppendOnly):
    """One change of a monthly budget: whose, from which amount to which (empty: no
    budget), who and when. Append-only, like the caps' changes."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="budget_changes"
    )
    cost_center = models.CharField(
        max_length=100, blank=True, help_text="Empty: the organization as a whole."
    )
    previous_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="In the organization's currency; empty: no budget.",
    )
    new_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_by_token = models.ForeignKey(
        ServiceToken,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="The platform API's token, when the change came through it.",
    )

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["organization", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.cost_center or 'Organization'}: {self.previous_amount} → {self.new_amount}"
