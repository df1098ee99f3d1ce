from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # The notification center's admin lives with the notification center.
        from billing.notifications import admin  # noqa: F401
