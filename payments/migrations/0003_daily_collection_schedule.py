"""The periodic task "collect due payments": Beat fires it every day at 06:00
Europe/Paris. Staff may change it in the admin (Periodic tasks)."""

from django.db import migrations

from boissipay.schedules import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_payment_paymentlog"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            name="collect due payments",
            task="payments.collect_due_payments",
            description="Submit the direct debits due today (and retries due) to the payments gateway.",
            minute="0",
            hour="6",
        )
    ]
