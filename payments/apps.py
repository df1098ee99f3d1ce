from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment methods, gateways, charges, refunds, dunning, webhooks and reconciliation."""

    name = "payments"
    verbose_name = "Payments"

    def ready(self):
        from payments import checks, receivers  # noqa: F401 - registers the check and receivers
