"""The deployment check on Stripe keys (`manage.py check --deploy`)."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payments.checks import stripe_keys_without_debug


@pytest.mark.parametrize(
    ("debug", "secret_key", "errors"),
    [
        pytest.param(
            True, "sk_live_0123456789abcdefghijklmn", ["payments.E001"], id="keys-with-debug"
        ),
        pytest.param(False, "sk_live_0123456789abcdefghijklmn", [], id="keys-without-debug"),
        pytest.param(True, "", [], id="sandbox-with-debug"),
    ],
)
def test_stripe_keys_with_debug_fail_the_check(settings, debug, secret_key, errors):
    settings.DEBUG, settings.STRIPE_SECRET_KEY = debug, secret_key

    assert [error.id for error in stripe_keys_without_debug()] == errors


def test_the_deploy_check_refuses_it(settings):
    settings.DEBUG, settings.STRIPE_SECRET_KEY = True, "sk_live_0123456789abcdefghijklmn"

    with pytest.raises(SystemCheckError, match="Stripe keys are set"):
        call_command("check", "--deploy", "--fail-level", "ERROR", "--tag", "security")
