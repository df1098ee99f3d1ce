"""django-q2 entry points of the usage app: thin adapters that call one service each."""

from django.utils import timezone

from usage.alerts import services as alert_services
from usage.alerts.projection import projected_overage_alerts_if_needed
from usage.budgets.services import budget_alerts_if_needed


def projected_overage_alerts() -> int:
    return projected_overage_alerts_if_needed(now=timezone.now())


def budget_alerts() -> int:
    return budget_alerts_if_needed(now=timezone.now())


def usage_alert_notices_send(alert_ids: list[int]) -> None:
    alert_services.usage_alert_notices_send(alert_ids=alert_ids)
