"""Daily revenue snapshots: the model, the daily job's schedule, and the Support and Finance
groups reading them (the roles' lists as they stand now: `billing/accounts/roles.py`)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

SCHEDULES = {"Keep the day's revenue figures": "billing.tasks.revenue_snapshot"}
READER_GROUPS = ("Support", "Finance")


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "D", "repeats": -1},  # daily
        )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


def grant_view(apps, schema_editor):
    # Permissions are made after every migration has run; the groups need this one now.
    app_config = apps.get_app_config("billing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(
        content_type__app_label="billing", codename="view_revenuesnapshot"
    )
    for group in apps.get_model("auth", "Group").objects.filter(name__in=READER_GROUPS):
        group.permissions.add(view)


def revoke_view(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=READER_GROUPS):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="billing", codename="view_revenuesnapshot"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_notice_audience"),
    ]

    operations = [
        migrations.CreateModel(
            name="RevenueSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField(help_text="The UTC day the figures were read on.")),
                ("currency", models.CharField(max_length=3)),
                ("definitions_version", models.PositiveSmallIntegerField()),
                ("mrr", models.DecimalField(decimal_places=2, max_digits=14, verbose_name="MRR")),
                ("usage_run_rate", models.DecimalField(decimal_places=2, max_digits=14)),
                ("figures", models.JSONField(default=dict)),
                ("taken_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["-day", "currency"],
                "get_latest_by": "day",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("day", "currency"), name="one_revenue_snapshot_a_day"
                    )
                ],
            },
        ),
        migrations.RunPython(create_schedules, delete_schedules),
        migrations.RunPython(grant_view, revoke_view),
    ]
