import datetime as dt
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.errors import BillingError
from billing.models import Organization
from usage.simulation import DEFAULT_SHARE_OF_ALLOWANCE, calls_simulate


class Command(BaseCommand):
    help = (
        "Record realistic call traffic for an organization over a date range, through the "
        "same service as the platform's reports. The same arguments give the same calls, so "
        "a re-run records nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument(
            "--since", required=True, type=dt.date.fromisoformat, help="First day, YYYY-MM-DD."
        )
        parser.add_argument(
            "--until",
            type=dt.date.fromisoformat,
            help="Last day, YYYY-MM-DD (default: today in the organization's timezone).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Another seed, other calls.")
        parser.add_argument(
            "--share-of-allowance",
            type=Decimal,
            default=DEFAULT_SHARE_OF_ALLOWANCE,
            help="Calls per usage month as a share of the plan's included seconds "
            f"(default {DEFAULT_SHARE_OF_ALLOWANCE}).",
        )
        parser.add_argument(
            "--seconds-per-month",
            type=int,
            help="Call seconds per usage month instead; needed when the plan has no limit.",
        )

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization has the slug {options['org']!r}.")
        self.stdout.write(f"Simulating calls of {organization} from {options['since']}…")
        try:
            result = calls_simulate(
                organization=organization,
                since=options["since"],
                until=options["until"],
                seed=options["seed"],
                share_of_allowance=options["share_of_allowance"],
                seconds_per_month=options["seconds_per_month"],
                now=timezone.now(),
                on_batch=lambda done, total: self.stdout.write(f"  {done:,} of {total:,} calls"),
            )
        except BillingError as refusal:
            raise CommandError(refusal.message) from refusal
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.calls:,} calls of {result.seconds:,} s in all: {result.recorded:,} "
                f"recorded, {result.duplicates:,} already recorded before."
            )
        )
