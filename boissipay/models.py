"""Shared-kernel tables: API keys, idempotency records, the transactional outbox and the
per-handler inbox. Contexts never touch these directly but through the kernel helpers."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now

from boissipay.history import track


@track(exclude=["digest"])
class ApiKey(models.Model):
    """A client system's key. Only the SHA-256 digest of the (256-bit random) key is
    stored: a fast lookup, safe because the key itself has full entropy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    customer_id = models.UUIDField(
        null=True, blank=True, help_text="When set, the key sees only this customer's resources."
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The first answer to a client write, kept per (API key, Idempotency-Key) so that a
    retry gets the same answer back and creates nothing."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_digest = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]  # the purge

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class OutboxEvent(models.Model):
    """A domain event written in the same transaction as the change that caused it, then
    relayed to Kafka. Column names follow Debezium's outbox pattern."""

    position = models.BigAutoField(primary_key=True)
    id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=100)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=64, help_text="Kafka message key (the contract id).")
    event_type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    payload = models.JSONField()
    occurred_at = models.DateTimeField(db_default=Now())
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    dead_lettered_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the in-process handlers had all applied it (set at once if none)."
    )
    dispatch_attempts = models.PositiveIntegerField(default=0)
    request_id = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="The HTTP request that caused it (logs)."
    )
    dispatch_after = models.DateTimeField(
        null=True, blank=True, help_text="A handler failed on it: the dispatcher tries again after this."
    )

    class Meta:
        ordering = ["position"]
        indexes = [
            models.Index(fields=["position"], name="outbox_unpublished", condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["aggregate_id", "position"], name="outbox_aggregate_position"),
            models.Index(
                fields=["position"], name="outbox_undispatched", condition=models.Q(dispatched_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.position}"


class InboxEntry(models.Model):
    """Proof that a handler applied an event: inserted in the handler's own transaction,
    its unique constraint makes a second delivery a no-op."""

    handler = models.CharField(max_length=150)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "inbox entries"
        constraints = [models.UniqueConstraint(fields=["handler", "event_id"], name="inbox_once_per_handler")]

    def __str__(self) -> str:
        return f"{self.handler} ← {self.event_id}"


class DeadLetter(models.Model):
    """An event a handler kept failing on, set aside so the events behind it keep
    flowing. Staff inspect it in the admin and replay it once the cause is fixed."""

    handler = models.CharField(max_length=150)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    source = models.CharField(max_length=100, help_text="Topic, or 'inprocess'.")
    aggregate_id = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField()
    schema_version = models.PositiveSmallIntegerField(default=1)
    kafka_partition = models.IntegerField(null=True, blank=True)
    kafka_offset = models.BigIntegerField(null=True, blank=True)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    # Staff may close a letter without replaying it (the event is obsolete, or was handled
    # by hand), saying why; a letter is never deleted by staff.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    resolution = models.CharField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["handler", "event_id"],
                condition=models.Q(replayed_at__isnull=True, resolved_at__isnull=True),
                name="one_open_dead_letter",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.handler}"

    def as_message(self):
        """The event as its handler receives it, for a replay."""
        from boissipay.events import EventMessage

        return EventMessage(
            id=self.event_id,
            type=self.event_type,
            version=self.schema_version,
            source=self.source,
            aggregate_id=self.aggregate_id,
            occurred_at=self.occurred_at,
            data=self.payload,
        )


class Heartbeat(models.Model):
    """The last sign of life of a long-running process (relay, dispatcher, consumer,
    Celery worker, Beat): readiness reports one that has stopped beating. A process that
    stops cleanly removes its row."""

    name = models.CharField(max_length=200, primary_key=True, help_text="kind@host:pid")
    kind = models.CharField(max_length=50)
    beat_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name
