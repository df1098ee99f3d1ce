from django.core.management.base import BaseCommand
from django.utils import timezone

from usage.demo import seed_usage_demo


class Command(BaseCommand):
    help = (
        "Give the demo organizations AI employees, phone numbers, months of calls, storage "
        "and API usage, where missing (idempotent). Run after seed_demo, which calls it."
    )

    def handle(self, *args, **options):
        seed_usage_demo(now=timezone.now(), say=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(self.style.SUCCESS("Usage demo ready."))
