"""The outbox and inbox do not grow for ever: a daily Beat task purges what everyone has
had, in short batches, and never an event still owed to anyone."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from boissipay import services
from boissipay.models import DeadLetter, InboxEntry, OutboxEvent

DAY = dt.timedelta(days=1)


@pytest.fixture
def now(db):
    """A fixed now, whatever the real date."""
    from tests.clock import frozen_at

    with frozen_at(dt.date(2026, 6, 15), 4):
        yield timezone.now()


def outbox_row(name: str, *, occurred, published=None, dispatched=None, dead=None) -> OutboxEvent:
    return OutboxEvent.objects.create(
        topic="boissipay.billing.v1",
        aggregate_type="contract",
        aggregate_id=str(uuid.uuid4()),
        event_type=f"test.{name}",
        payload={"name": name},
        occurred_at=occurred,
        published_at=published,
        dispatched_at=dispatched,
        dead_lettered_at=dead,
    )


def test_only_what_everyone_has_had_is_purged_once_older_than_the_retention(now, settings):
    from django_celery_beat.models import PeriodicTask

    from boissipay.tasks import purge_event_records

    settings.OUTBOX_RETENTION_DAYS = 30
    settings.INBOX_RETENTION_DAYS = 30
    old, recent = now - 40 * DAY, now - 10 * DAY
    outbox_row("gone", occurred=old, published=old, dispatched=old)
    outbox_row("recent", occurred=recent, published=recent, dispatched=recent)
    outbox_row("never published", occurred=old, dispatched=old)
    outbox_row("never dispatched", occurred=old, published=old)
    outbox_row("dead-lettered", occurred=old, dispatched=old, dead=old)
    outbox_row("published late", occurred=old, published=recent, dispatched=old)
    for name, when in (("old", old), ("recent", recent)):
        entry = InboxEntry.objects.create(handler=f"h.{name}", event_id=uuid.uuid4(), event_type="t")
        InboxEntry.objects.filter(pk=entry.pk).update(processed_at=when)
    letter = DeadLetter.objects.create(
        handler="h",
        event_id=uuid.uuid4(),
        event_type="t",
        source="inprocess",
        aggregate_id="a",
        occurred_at=old,
        payload={},
        schema_version=1,
        error="boom",
        attempts=3,
    )

    assert purge_event_records() == {"outbox": 1, "inbox": 1}

    assert sorted(OutboxEvent.objects.values_list("payload__name", flat=True)) == [
        "dead-lettered",
        "never dispatched",
        "never published",
        "published late",
        "recent",
    ]
    assert list(InboxEntry.objects.values_list("handler", flat=True)) == ["h.recent"]
    assert DeadLetter.objects.filter(pk=letter.pk).exists()
    task = PeriodicTask.objects.get(name="purge event records")
    assert (task.task, task.crontab.hour, task.crontab.minute) == ("boissipay.purge_event_records", "4", "0")


def test_the_event_purge_works_in_short_batches(now):
    old = now - 40 * DAY
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            topic="t",
            aggregate_type="contract",
            aggregate_id="a",
            event_type="e",
            payload={},
            occurred_at=old,
            published_at=old,
            dispatched_at=old,
        )
        for _ in range(25)
    )
    InboxEntry.objects.bulk_create(InboxEntry(handler="h", event_id=uuid.uuid4(), event_type="e") for _ in range(12))
    InboxEntry.objects.update(processed_at=old)

    purged = services.purge_event_records(outbox_older_than=30 * DAY, inbox_older_than=30 * DAY, batch_size=10)

    assert (purged.outbox, purged.inbox) == (25, 12)
    assert not OutboxEvent.objects.exists() and not InboxEntry.objects.exists()
