"""Billing's admin, one module per domain; importing them registers their model admins when
Django's autodiscovery imports `billing.admin`. `base` holds what every app's admin shares."""

from billing.admin import accounts, catalog, invoicing, notifications, subscriptions, support

__all__ = ["accounts", "catalog", "invoicing", "notifications", "subscriptions", "support"]
