from django.db import models


class RevenueSnapshot(models.Model):
    """One day's revenue figures in one currency, as the daily job read them, with the version
    of the definitions they follow (a later change of rule leaves them as they were)."""

    day = models.DateField(help_text="The UTC day the figures were read on.")
    currency = models.CharField(max_length=3)
    definitions_version = models.PositiveSmallIntegerField()
    mrr = models.DecimalField("MRR", max_digits=14, decimal_places=2)
    usage_run_rate = models.DecimalField(max_digits=14, decimal_places=2)
    # Every figure of the month so far, by its name in the definitions, as text.
    figures = models.JSONField(default=dict)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "currency"]
        get_latest_by = "day"
        constraints = [
            models.UniqueConstraint(fields=["day", "currency"], name="one_revenue_snapshot_a_day")
        ]

    def __str__(self) -> str:
        return f"Revenue of {self.day:%Y-%m-%d} in {self.currency}"
