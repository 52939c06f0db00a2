"""The periodic task "purge idempotency records": Beat fires it every day at 03:30
Europe/Paris. Staff may change it in the admin (Periodic tasks)."""

from django.db import migrations

TASK_NAME = "purge idempotency records"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="Europe/Paris"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "boissipay.purge_idempotency_records",
            "crontab": crontab,
            "enabled": True,
            "description": "Forget the answers kept for Idempotency-Key retries once older than the retention.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0003_idempotency_created_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
