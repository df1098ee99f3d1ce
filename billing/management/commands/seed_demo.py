from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from billing.lifecycle.demo import (
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    billing_request_demo_ensure,
    renewals_replay,
    seed_demo,
)


class Command(BaseCommand):
    help = (
        "Create the demo catalog, organizations, logins and their usage that are missing "
        "(idempotent)."
    )

    def handle(self, *args, **options):
        now = timezone.now()

        # By name, not by import: billing does not depend on the usage app's code.
        def usage_seed():
            call_command("seed_usage_demo", stdout=self.stdout, stderr=self.stderr)

        logins = seed_demo(
            now=now, say=lambda line: self.stdout.write(f"  {line}"), usage_seed=usage_seed
        )
        usage_seed()  # calls up to now for the organizations that were there already
        self.stdout.write("  Renewing up to today, each period when it ended: its invoice…")
        issued = renewals_replay(now=now)
        self.stdout.write(f"  {issued} invoices issued.")
        call_command("seed_payments_demo", stdout=self.stdout, stderr=self.stderr)
        billing_request_demo_ensure(now=now)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in with any of:"))
        for username, role, organization in logins:
            self.stdout.write(f"  {username:<8} / {DEMO_PASSWORD}   {role:<32} {organization}")
        self.stdout.write(
            "  staff, support, finance and catalog give a code after the password: "
            "`.venv/bin/python manage.py "
            f"demo_totp_code` prints it, or add the secret {DEMO_TOTP_SECRET} to an "
            "authenticator app."
        )
