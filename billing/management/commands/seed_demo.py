from django.core.management.base import BaseCommand
from django.utils import timezone

from billing.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo catalog, organizations and logins that are missing (idempotent)."

    def handle(self, *args, **options):
        logins = seed_demo(now=timezone.now(), say=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in with any of:"))
        for username, role, organization in logins:
            self.stdout.write(f"  {username:<8} / {DEMO_PASSWORD}   {role:<28} {organization}")
