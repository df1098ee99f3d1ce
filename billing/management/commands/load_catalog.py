from django.core.management.base import BaseCommand

from billing.catalog import services as catalog_services


class Command(BaseCommand):
    help = "Create the platform's features and the public demo plans that are missing (idempotent)."

    def handle(self, *args, **options):
        plans = catalog_services.catalog_load()
        self.stdout.write(self.style.SUCCESS(f"Catalog ready: {len(plans)} public plans."))
