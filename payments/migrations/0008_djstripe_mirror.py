"""Stripe's objects are dj-stripe's mirror: the customer and event rows link to it by their
Stripe ids (the columns keep their names and values), the copied event fields go, and the
daily reconciliation gets its tables and its schedule."""

import django.db.models.deletion
from django.db import migrations, models

SCHEDULES = {
    "Stripe reconciliation": "payments.tasks.stripe_reconciliation",
    "Stripe event purge": "payments.tasks.stripe_events_purge",
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "D", "repeats": -1}
        )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("djstripe", "0003_2_11"),
        ("django_q", "0018_task_success_index"),
        ("payments", "0007_paymentmethod_fingerprint"),
    ]

    operations = [
        # The columns stay as they are (same name, same Stripe id): only the model says
        # they now point at dj-stripe's rows.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="stripecustomer", name="customer_id"),
                migrations.AddField(
                    model_name="stripecustomer",
                    name="customer",
                    field=models.OneToOneField(
                        db_column="customer_id",
                        db_constraint=False,
                        help_text="Stripe's cus_… id.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="organization_link",
                        to="djstripe.customer",
                        to_field="id",
                    ),
                    preserve_default=False,
                ),
                migrations.RemoveField(model_name="processedstripeevent", name="event_id"),
                migrations.AddField(
                    model_name="processedstripeevent",
                    name="event",
                    field=models.OneToOneField(
                        db_column="event_id",
                        db_constraint=False,
                        help_text="Stripe's evt_… id.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="applied",
                        to="djstripe.event",
                        to_field="id",
                    ),
                    preserve_default=False,
                ),
            ],
        ),
        migrations.AlterModelOptions(
            name="processedstripeevent", options={"ordering": ["-processed_at", "-pk"]}
        ),
        migrations.RemoveField(model_name="processedstripeevent", name="created_at_stripe"),
        migrations.RemoveField(model_name="processedstripeevent", name="event_type"),
        migrations.RemoveField(model_name="processedstripeevent", name="object_id"),
        migrations.CreateModel(
            name="StripeReconciliation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField(unique=True)),
                ("ran_at", models.DateTimeField()),
                ("payments_compared", models.PositiveIntegerField(default=0)),
                ("refunds_compared", models.PositiveIntegerField(default=0)),
                ("mismatches_found", models.PositiveIntegerField(default=0)),
            ],
            options={"ordering": ["-day"]},
        ),
        migrations.CreateModel(
            name="StripeMismatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "object_type",
                    models.CharField(
                        choices=[
                            ("payment", "Payment"),
                            ("refund", "Refund"),
                            ("method", "Payment method"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("missing_at_stripe", "Recorded here, missing at Stripe"),
                            ("missing_here", "At Stripe, missing here"),
                            ("amount", "Amounts differ"),
                            ("status", "Statuses differ"),
                            ("details", "Card or account details differ"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "stripe_id",
                    models.CharField(
                        help_text="Stripe's pi_…, re_… or pm_… id.",
                        max_length=255,
                    ),
                ),
                ("ours", models.CharField(blank=True, max_length=100, verbose_name="here")),
                ("theirs", models.CharField(blank=True, max_length=100, verbose_name="at Stripe")),
                ("first_found_on", models.DateField()),
                ("last_found_on", models.DateField()),
                ("resolved_on", models.DateField(blank=True, null=True)),
                (
                    "attempt",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="payments.paymentattempt",
                    ),
                ),
                (
                    "refund",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="payments.refund",
                    ),
                ),
                (
                    "payment_method",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="payments.paymentmethod",
                    ),
                ),
            ],
            options={
                "ordering": ["resolved_on", "-first_found_on", "-pk"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("resolved_on__isnull", True)),
                        fields=("stripe_id", "kind"),
                        name="one_open_mismatch_per_object_and_kind",
                    )
                ],
            },
        ),
        migrations.RunPython(create_schedules, delete_schedules),
    ]
