from django.db import migrations


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="Retry failed payments",
        defaults={
            "func": "payments.tasks.payment_retries",
            "schedule_type": "I",  # every `minutes`
            "minutes": 60,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="Retry failed payments").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
