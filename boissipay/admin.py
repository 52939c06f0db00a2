"""Back-office pages of the platform: API keys, the outbox backlog and the inbox."""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Min
from django.utils import timezone

from boissipay import services
from boissipay.models import ApiKey, DeadLetter, InboxEntry, OutboxEvent


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Pages of records nobody edits by hand (decisions, events, documents): staff read
    them and act through the admin actions, which call the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "customer_id", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "customer_id"]
    readonly_fields = ["id", "name", "prefix", "scopes", "customer_id", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are created with `manage.py apikey create`, which shows the raw key once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key_id=key.pk)
        self.message_user(
            request,
            f"{queryset.count()} key(s) revoked: refused everywhere within {settings.API_KEY_CACHE_SECONDS} s "
            "(web processes keep the keys they have seen that long).",
            messages.SUCCESS,
        )


class PublishedFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("pending", "Not yet published"), ("published", "Published"), ("dead", "Dead-lettered")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(published_at__isnull=True, dead_lettered_at__isnull=True)
        if self.value() == "published":
            return queryset.filter(published_at__isnull=False)
        if self.value() == "dead":
            return queryset.filter(dead_lettered_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyModelAdmin):
    list_display = ["position", "event_type", "aggregate_id", "occurred_at", "published_at", "attempts", "last_error"]
    list_filter = [PublishedFilter, "topic", "event_type"]
    search_fields = ["=id", "=aggregate_id", "event_type"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    date_hierarchy = "occurred_at"

    def changelist_view(self, request, extra_context=None):
        pending = OutboxEvent.objects.filter(published_at__isnull=True, dead_lettered_at__isnull=True)
        oldest = pending.aggregate(oldest=Min("occurred_at"))["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        self.message_user(
            request, f"Backlog: {pending.count()} unpublished event(s); oldest waiting {age:.0f} s.", messages.INFO
        )
        return super().changelist_view(request, extra_context)


@admin.register(InboxEntry)
class InboxEntryAdmin(admin.ModelAdmin):
    list_display = ["handler", "event_type", "event_id", "processed_at"]
    list_filter = ["handler", "event_type"]
    search_fields = ["=event_id", "handler"]
    readonly_fields = ["handler", "event_id", "event_type", "processed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["created_at", "handler", "event_type", "aggregate_id", "attempts", "replayed_at", "short_error"]
    list_filter = [("replayed_at", admin.EmptyFieldListFilter), "handler", "event_type", "source"]
    search_fields = ["=event_id", "=aggregate_id", "handler", "error"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None

    @admin.display(description="error")
    def short_error(self, letter):
        return letter.error[:120]

    @admin.action(description="Replay selected events with their handler")
    def replay(self, request, queryset):
        replayed = failed = 0
        for letter in queryset.filter(replayed_at__isnull=True).order_by("pk"):
            if services.replay_dead_letter(dead_letter_id=letter.pk):
                replayed += 1
            else:
                failed += 1
        if replayed:
            self.message_user(request, f"{replayed} event(s) replayed.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} event(s) failed again; see their error.", messages.ERROR)
