from django.db import migrations

SCHEDULES = {"Send renewal reminders": "billing.tasks.renewal_reminders_send"}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "H", "repeats": -1},  # hourly
        )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0011_notification_center")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
