"""Writes for the second factor: setting up an authenticator app, recovery codes, checking
a code, turning it off. Each owns its transaction."""

from __future__ import annotations

from django.db import transaction
from django_otp import devices_for_user, verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.errors import BillingError, ErrorCode

AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_CODES_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def _normalized(code: str) -> str:
    """People type codes with spaces ("123 456") or in capitals."""
    return "".join(code.split()).lower()


def authenticator_start(*, user) -> TOTPDevice:
    """The authenticator app being set up: a new secret, or the one already shown and not
    yet confirmed (reloading the page must not change the QR code)."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return pending or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def authenticator_confirm(*, device: TOTPDevice, code: str) -> list[str]:
    """Turn the authenticator on once it shows a right code. It replaces any earlier one,
    and comes with new recovery codes, returned to be shown once. A wrong code counts
    towards the device's throttling (kept: it is saved before the refusal)."""
    if not device.verify_token(_normalized(code)):
        raise BillingError(ErrorCode.WRONG_CODE)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user_id).exclude(pk=device.pk).delete()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        return recovery_codes_renew(user=device.user)


@transaction.atomic
def recovery_codes_renew(*, user) -> list[str]:
    """New recovery codes, each usable once; the earlier ones stop working. Returned to be
    shown once."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_CODES_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def second_factor_verify(*, user, code: str) -> Device | None:
    """The device that accepts the code (the authenticator's current code, or an unused
    recovery code, which is then used up), or None. Each device counts failures and makes
    the person wait longer after each one."""
    code = _normalized(code)
    if not code:
        return None
    for device in devices_for_user(user):
        verified = verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified
    return None


@transaction.atomic
def second_factor_disable(*, user) -> None:
    """Remove the authenticator app and the recovery codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
