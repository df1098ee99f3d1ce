from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode
from billing.models import Invoice, Organization

E164 = RegexValidator(
    r"^\+[1-9]\d{6,14}$",
    "Enter the number in E.164 form: + then 7 to 15 digits, e.g. +14155550100.",
)


class AIEmployee(models.Model):
    """A voice agent. It counts toward the plan's quota while active; deactivating keeps
    its configuration and history and frees the quota."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="employees"
    )
    name = models.CharField(max_length=100)
    cost_center = models.CharField(
        max_length=100, blank=True, help_text="Team or project the employee's usage is billed to."
    )
    inbound_capable = models.BooleanField(
        default=True, help_text="Answers calls; needs a phone number to receive them."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "AI employee"
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return self.name


class PhoneNumberRate(models.Model):
    """Staff-managed price list: a number's monthly fee is the type price, plus the regional
    regulatory fee, plus the vanity surcharge for vanity numbers."""

    class Type(models.TextChoices):
        LOCAL = "local", "Local"
        TOLL_FREE = "toll_free", "Toll-free"

    number_type = models.CharField(max_length=10, choices=Type.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    region = models.CharField(
        max_length=100,
        blank=True,
        help_text="Empty: every region of the country without its own rate.",
    )
    monthly_price = MoneyField(max_digits=10, decimal_places=2)
    regulatory_fee = MoneyField(max_digits=10, decimal_places=2, default=0)
    vanity_surcharge = MoneyField(max_digits=10, decimal_places=2, default=0)

    class Meta:
        ordering = ["country", "region", "number_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["number_type", "country", "region", "monthly_price_currency"],
                name="one_rate_per_type_and_place",
            ),
            models.CheckConstraint(
                condition=Q(regulatory_fee_currency=F("monthly_price_currency"))
                & Q(vanity_surcharge_currency=F("monthly_price_currency")),
                name="rate_amounts_share_one_currency",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.country} {self.region}".strip()
        return f"{self.get_number_type_display()} · {where}"

    def monthly_fee(self, *, vanity: bool) -> Money:
        fee = self.monthly_price + self.regulatory_fee
        return fee + self.vanity_surcharge if vanity else fee


class PhoneNumber(models.Model):
    """A provisioned number. Its monthly fee is fixed when provisioned. Once released it is
    never given back to the organization that released it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="phone_numbers"
    )
    number = models.CharField(max_length=16, validators=[E164])
    number_type = models.CharField(max_length=10, choices=PhoneNumberRate.Type.choices)
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=100, blank=True)
    is_vanity = models.BooleanField(default=False)
    monthly_fee = MoneyField(max_digits=10, decimal_places=2)
    employee = models.ForeignKey(
        AIEmployee,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="phone_numbers",
        help_text="The AI employee that answers calls to this number.",
    )
    provisioned_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provisioned_at", "pk"]
        constraints = [
            # A number is held by at most one organization at a time, and an organization
            # holds it at most once, ever: a released number cannot come back.
            models.UniqueConstraint(
                fields=["number"], condition=Q(released_at__isnull=True), name="number_held_once"
            ),
            models.UniqueConstraint(
                fields=["organization", "number"], name="number_never_reprovisioned"
            ),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | Q(released_at__gte=F("provisioned_at")),
                name="released_after_provisioned",
            ),
        ]
        indexes = [models.Index(fields=["organization", "released_at"])]

    def __str__(self) -> str:
        return self.number

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class Call(models.Model):
    """One finished call: an append-only fact. Counters are derived from these rows."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    platform_call_id = models.CharField(max_length=100, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calls")
    # Calls are billing facts: an employee with calls cannot be deleted, only deactivated.
    employee = models.ForeignKey(AIEmployee, on_delete=models.PROTECT, related_name="calls")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    connected_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    billable_seconds = models.PositiveIntegerField()
    usage_period_start = models.DateTimeField(
        help_text="Start of the usage period the call counts in."
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-connected_at"]
        indexes = [
            models.Index(fields=["organization", "connected_at"]),
            models.Index(fields=["organization", "usage_period_start"]),
            models.Index(fields=["employee", "connected_at"]),
            models.Index(fields=["-connected_at"], name="call_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__gte=F("connected_at")), name="call_ends_after_connect"
            )
        ]

    def __str__(self) -> str:
        return self.platform_call_id


class UsageCounter(models.Model):
    """Running totals of one organization's usage period, updated in the same transaction as
    the facts they sum (`used = used + x`), so a balance is one indexed read."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_counters"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    call_seconds = models.PositiveBigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveBigIntegerField(default=0)
    storage_bytes = models.PositiveBigIntegerField(default=0, help_text="Latest reported.")
    storage_peak_bytes = models.PositiveBigIntegerField(
        default=0, help_text="Highest reported in the period; storage overage is billed on it."
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Invoiced: later facts for it count in the open period."
    )

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="one_counter_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization} from {self.period_start:%Y-%m-%d}"


class UsageReport(models.Model):
    """A storage or API-usage report from the platform, kept as the fact behind a counter.
    `report_id` makes a repeated report a no-op."""

    class Kind(models.TextChoices):
        STORAGE = "storage", "Stored bytes"
        API_CALLS = "api_calls", "API calls"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_reports"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    report_id = models.CharField(max_length=100)
    quantity = models.PositiveBigIntegerField()
    measured_at = models.DateTimeField()
    period_start = models.DateTimeField()
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "report_id"], name="usage_report_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "kind", "period_start", "measured_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.quantity} ({self.report_id})"


class ServiceToken(models.Model):
    """A bearer token for the calling platform. Only its SHA-256 is stored; the token is
    shown once, when staff create it. It reaches every organization only when it says so
    (`all_organizations`: the calling platform's own token); otherwise only the
    organizations it names. From `expires_at` on it is refused."""

    PREFIX = "svc_"

    name = models.CharField(max_length=100, help_text="Which system uses it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(
        max_length=12, editable=False, help_text="The token's first characters, to recognise it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    all_organizations = models.BooleanField(
        default=False,
        help_text="Reaches every organization, present and future: the calling platform's "
        "own token. Otherwise it reaches only the organizations named.",
    )
    organizations = models.ManyToManyField(
        "billing.Organization",
        blank=True,
        related_name="service_tokens",
        help_text="The only organizations this token reaches (when it does not reach all).",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused from this moment on. Empty: it never expires."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class AlertThreshold(models.Model):
    """A level of one metric at which the organization is alerted, in percent of the plan's
    limit or as an amount (minutes of call time, GiB of storage, money of overage, a count
    otherwise). The default percents (`USAGE_ALERT_DEFAULT_PERCENTS`) apply without a row; a
    row with a default's percent switches it off or on again; any other row is the
    organization's own threshold."""

    class Metric(models.TextChoices):
        CALL_SECONDS = "call_seconds", "Call time"
        ACTIVE_EMPLOYEES = "active_employees", "Active AI employees"
        PHONE_NUMBERS = "phone_numbers", "Phone numbers"
        STORAGE = "storage", "Storage"
        API_CALLS = "api_calls", "API calls"
        OVERAGE_SPEND = "overage_spend", "Overage spend"
        OVERAGE_CAP = "overage_cap", "Overage cap"

    class Unit(models.TextChoices):
        PERCENT = "percent", "Percent of the limit"
        ABSOLUTE = "absolute", "Amount"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_thresholds"
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    unit = models.CharField(max_length=10, choices=Unit.choices)
    value = models.DecimalField(max_digits=14, decimal_places=2)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["metric", "unit", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "unit", "value"], name="threshold_once"
            ),
            models.CheckConstraint(condition=Q(value__gt=0), name="threshold_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} at {self.value} ({self.unit})"


class UsageAlert(models.Model):
    """A threshold crossed in one usage period, inserted in the transaction whose usage
    crossed it: at most once per period (the unique constraint decides between concurrent
    writers). `unit` `projected` is the projected-overage alert of the period."""

    class Unit(models.TextChoices):
        PERCENT = "percent", "Percent of the limit"
        ABSOLUTE = "absolute", "Amount"
        PROJECTED = "projected", "Projected to run out"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_alerts"
    )
    metric = models.CharField(max_length=20, choices=AlertThreshold.Metric.choices)
    unit = models.CharField(max_length=10, choices=Unit.choices)
    value = models.DecimalField(max_digits=14, decimal_places=2)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    used = models.DecimalField(
        max_digits=20, decimal_places=2, help_text="The metric once crossed, in its base unit."
    )
    limit = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "unit", "value", "period_start"],
                name="usage_alert_once_per_period",
            )
        ]
        indexes = [models.Index(fields=["organization", "period_start", "metric"])]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.value} ({self.unit}) from {self.period_start:%Y-%m-%d}"


class AlertSnooze(models.Model):
    """No more notices about one metric until its usage period ends (alerts are still
    recorded, and shown on the alerts page and in the API)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_snoozes"
    )
    metric = models.CharField(max_length=20, choices=AlertThreshold.Metric.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    snoozed_at = models.DateTimeField()
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "period_start"], name="snooze_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} snoozed from {self.period_start:%Y-%m-%d}"


# --- costs by team and AI employee ------------------------------------------------------------


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


class EmployeeUsageCounter(models.Model):
    """Call time of one AI employee in one usage period, under the cost center it carried
    when each call was recorded. Written with the organization's counter, in the same
    transaction, so the spend caps are checked with indexed reads."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="employee_usage_counters"
    )
    employee = models.ForeignKey(
        AIEmployee, on_delete=models.CASCADE, related_name="usage_counters"
    )
    cost_center = models.CharField(max_length=100, blank=True)
    period_start = models.DateTimeField()
    call_seconds = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-period_start", "employee"]
        constraints = [
            models.UniqueConstraint(
                fields=["employee", "period_start", "cost_center"],
                name="one_employee_counter_per_period_and_cost_center",
            )
        ]
        indexes = [models.Index(fields=["organization", "period_start", "cost_center"])]

    def __str__(self) -> str:
        return f"{self.employee} from {self.period_start:%Y-%m-%d}"


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


class SpendCapChange(models.Model):
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

    def save(self, *args, **kwargs):
        if self.pk:
            raise BillingError(
                ErrorCode.LEDGER_APPEND_ONLY, "Cap changes are never changed; add another."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise BillingError(
            ErrorCode.LEDGER_APPEND_ONLY, "Cap changes are never deleted; add another."
        )


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


class BudgetChange(models.Model):
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

    def save(self, *args, **kwargs):
        if self.pk:
            raise BillingError(
                ErrorCode.LEDGER_APPEND_ONLY, "Budget changes are never changed; add another."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise BillingError(
            ErrorCode.LEDGER_APPEND_ONLY, "Budget changes are never deleted; add another."
        )
