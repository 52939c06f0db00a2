"""The periodic task "purge event records": Beat fires it every day at 04:00
Europe/Paris (after the idempotency purge). Staff may change it in the admin."""

from django.db import migrations

TASK_NAME = "purge event records"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="4", day_of_month="*", month_of_year="*", day_of_week="*", timezone="Europe/Paris"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "boissipay.purge_event_records",
            "crontab": crontab,
            "enabled": True,
            "description": "Forget the outbox rows everyone has had and the inbox rows once older than the retention.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0005_outbox_dispatch_after"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
