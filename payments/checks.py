"""Deployment checks of the payments app (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

STRIPE_KEY_SETTINGS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_LIVE_SECRET_KEY",
    "STRIPE_TEST_SECRET_KEY",
)


@checks.register(checks.Tags.security, deploy=True)
def stripe_keys_without_debug(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """dj-stripe accepts a webhook secret sent in a request header while DEBUG is on: with
    real Stripe keys, anyone could then forge events. Our endpoint refuses that header, and
    this check keeps the combination out of any deployment."""
    configured = [name for name in STRIPE_KEY_SETTINGS if getattr(settings, name, "")]
    if not (settings.DEBUG and configured):
        return []
    return [
        checks.Error(
            f"Stripe keys are set ({', '.join(configured)}) while DEBUG is on.",
            hint="Turn DEBUG off wherever Stripe keys are set, or unset the keys to use the "
            "sandbox gateway.",
            id="payments.E001",
        )
    ]
