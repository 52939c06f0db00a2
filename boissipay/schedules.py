"""The periodic tasks the product ships with are created by data migrations (staff may
change them afterwards in the admin, Periodic tasks): this helper lets each migration say
only what runs when. Times are Europe/Paris."""

from django.db import migrations


def periodic_task(
    *, name: str, task: str, description: str, minute: str = "0", hour: str = "*", day_of_month: str = "*"
) -> migrations.RunPython:
    """A migration operation that schedules `task` under `name` on that crontab (and
    removes it when the migration is reversed)."""

    def create(apps, schema_editor):
        crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year="*",
            day_of_week="*",
            timezone="Europe/Paris",
        )
        apps.get_model("django_celery_beat", "PeriodicTask").objects.update_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "enabled": True, "description": description}
        )

    def remove(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return migrations.RunPython(create, remove)
