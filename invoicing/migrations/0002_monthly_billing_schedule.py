"""The periodic task "monthly billing run": Beat fires it on the 1st of each month at
02:00 Europe/Paris. Staff may change the schedule in the admin (Periodic tasks)."""

from django.db import migrations

TASK_NAME = "monthly billing run"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_month="1", month_of_year="*", day_of_week="*", timezone="Europe/Paris"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "invoicing.run_monthly_billing",
            "crontab": crontab,
            "enabled": True,
            "description": "Invoice the previous month (Europe/Paris): one invoice per contract with unbilled operations.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
