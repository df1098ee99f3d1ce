from django.apps import AppConfig


class UsageConfig(AppConfig):
    """AI employees, phone numbers, calls, counters, quotas and the platform API."""

    name = "usage"
    verbose_name = "Usage"
