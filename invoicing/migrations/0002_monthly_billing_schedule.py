"""The periodic task "monthly billing run": Beat fires it on the 1st of each month at
02:00 Europe/Paris. Staff may change the schedule in the admin (Periodic tasks)."""

from django.db import migrations

from boissipay.schedules import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            name="monthly billing run",
            task="invoicing.run_monthly_billing",
            description="Invoice the previous month (Europe/Paris): one invoice per contract with unbilled operations.",
            minute="0",
            hour="2",
            day_of_month="1",
        )
    ]
