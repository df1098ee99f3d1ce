# The constraints of invoices that carry their surplus credit to the balance, in a
# transaction of their own: PostgreSQL cannot alter a table with rows the previous
# migration wrote still waiting for their deferred checks.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_credits_exceeding_charges_carried"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="balanceentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "carried")),
                fields=("invoice",),
                name="credit_carried_once_per_invoice",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("tax_total_currency", models.F("subtotal_currency")),
                    ("total_currency", models.F("subtotal_currency")),
                    ("credit_applied_currency", models.F("subtotal_currency")),
                    ("credit_carried_currency", models.F("subtotal_currency")),
                ),
                name="invoice_amounts_share_one_currency",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.CheckConstraint(
                condition=models.Q(("total__gte", 0)), name="invoice_total_not_negative"
            ),
        ),
    ]
