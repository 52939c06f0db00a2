"""The periodic task "purge idempotency records": Beat fires it every day at 03:30
Europe/Paris. Staff may change it in the admin (Periodic tasks)."""

from django.db import migrations

from boissipay.schedules import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0003_idempotency_created_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            name="purge idempotency records",
            task="boissipay.purge_idempotency_records",
            description="Forget the answers kept for Idempotency-Key retries once older than the retention.",
            minute="30",
            hour="3",
        )
    ]
