"""The periodic task "purge event records": Beat fires it every day at 04:00
Europe/Paris (after the idempotency purge). Staff may change it in the admin."""

from django.db import migrations

from boissipay.schedules import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0005_outbox_dispatch_after"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            name="purge event records",
            task="boissipay.purge_event_records",
            description="Forget the outbox rows everyone has had and the inbox rows once older than the retention.",
            minute="0",
            hour="4",
        )
    ]
