from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment methods, gateways, charges, refunds, dunning and webhooks."""

    name = "payments"
    verbose_name = "Payments"
