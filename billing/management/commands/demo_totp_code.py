import time

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.lifecycle.demo import DEMO_TOTP_KEY, DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = (
        "Print the code the demo staff logins' authenticator shows now. Only the demo's "
        "published secret is read: no real person's code can be printed."
    )

    def handle(self, *args, **options):
        device = (
            TOTPDevice.objects.filter(key=DEMO_TOTP_KEY, confirmed=True)
            .select_related("user")
            .first()
        )
        if device is None:
            raise CommandError("There is no demo authenticator: run `manage.py seed_demo`.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        seconds_left = device.step - int(time.time() - device.t0) % device.step
        self.stdout.write(f"{totp.token():0{device.digits}d}")
        self.stderr.write(
            "The code for every demo staff login (staff, support, finance, catalog), valid "
            f"{seconds_left} more seconds "
            f"(the secret, for an authenticator app: {DEMO_TOTP_SECRET})."
        )
