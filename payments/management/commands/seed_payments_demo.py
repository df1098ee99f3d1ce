from django.core.management.base import BaseCommand
from django.utils import timezone

from payments.demo import seed_payments_demo


class Command(BaseCommand):
    help = "Give the demo organizations payment methods and a paid history (idempotent)."

    def handle(self, *args, **options):
        seed_payments_demo(now=timezone.now(), say=lambda line: self.stdout.write(f"  {line}"))
