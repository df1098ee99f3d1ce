"""Usage's models by domain; every one is importable from here, as migrations and the apps
refer to them."""

from usage.models.alerts import AlertSnooze, AlertThreshold, UsageAlert
from usage.models.costs import (
    Budget,
    BudgetChange,
    CostAllocationRule,
    CostShare,
    SpendCap,
    SpendCapChange,
)
from usage.models.metering import Call, EmployeeUsageCounter, UsageCounter, UsageReport
from usage.models.roster import E164, AIEmployee, PhoneNumber, PhoneNumberRate
from usage.models.tokens import ServiceToken

__all__ = [
    "E164",
    "AIEmployee",
    "AlertSnooze",
    "AlertThreshold",
    "Budget",
    "BudgetChange",
    "Call",
    "CostAllocationRule",
    "CostShare",
    "EmployeeUsageCounter",
    "PhoneNumber",
    "PhoneNumberRate",
    "ServiceToken",
    "SpendCap",
    "SpendCapChange",
    "UsageAlert",
    "UsageCounter",
    "UsageReport",
]
