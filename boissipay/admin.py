"""Back-office pages of the platform: API keys, the outbox backlog and the inbox."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from boissipay import services
from boissipay.admin_base import AuditTrailMixin, DetailActionsMixin, ModelAdmin, OperateMixin, ReadOnlyModelAdmin
from boissipay.models import ApiKey, DeadLetter, InboxEntry, OutboxEvent


@admin.register(ApiKey)
class ApiKeyAdmin(DetailActionsMixin, AuditTrailMixin, OperateMixin, ModelAdmin):
    list_display = ["name", "prefix", "scopes", "customer_id", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "customer_id"]
    readonly_fields = ["id", "name", "prefix", "scopes", "customer_id", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are created with `manage.py apikey create`, which shows the raw key once

    @admin.action(description="Revoke selected keys", permissions=["operate"])
    def revoke(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key_id=key.pk)
        self.message_user(
            request,
            _(
                "%(count)d key(s) revoked: refused everywhere within %(seconds)d s "
                "(web processes keep the keys they have seen that long)."
            )
            % {"count": queryset.count(), "seconds": settings.API_KEY_CACHE_SECONDS},
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
            request,
            _("Backlog: %(count)d unpublished event(s); oldest waiting %(age).0f s.")
            % {"count": pending.count(), "age": age},
            messages.INFO,
        )
        return super().changelist_view(request, extra_context)


@admin.register(InboxEntry)
class InboxEntryAdmin(ModelAdmin):
    list_display = ["handler", "event_type", "event_id", "processed_at"]
    list_filter = ["handler", "event_type"]
    search_fields = ["=event_id", "handler"]
    readonly_fields = ["handler", "event_id", "event_type", "processed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OpenLetterFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("replayed", "Replayed"), ("resolved", "Resolved without replay")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(replayed_at__isnull=True, resolved_at__isnull=True)
        if self.value() == "replayed":
            return queryset.filter(replayed_at__isnull=False)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


class ResolutionForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))


@admin.register(DeadLetter)
class DeadLetterAdmin(DetailActionsMixin, OperateMixin, ModelAdmin):
    """Events a handler kept failing on. Staff replay them, or close them with a reason;
    they are never deleted by hand (the retention task ages closed ones out)."""

    list_display = [
        "created_at",
        "handler",
        "event_type",
        "aggregate_id",
        "attempts",
        "replayed_at",
        "resolved_at",
        "resolved_by",
        "short_error",
    ]
    list_filter = [OpenLetterFilter, "handler", "event_type", "source"]
    search_fields = ["=event_id", "=aggregate_id", "handler", "error"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay", "resolve"]
    actions_with_a_form = ("resolve",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="error")
    def short_error(self, letter):
        return letter.error[:120]

    @admin.action(
        description="Close the selected letters without replaying them (with a reason)", permissions=["operate"]
    )
    def resolve(self, request, queryset):
        from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
        from django.shortcuts import render

        form = ResolutionForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            closed = sum(
                services.resolve_dead_letter(
                    dead_letter_id=letter.pk,
                    reason=form.cleaned_data["reason"],
                    resolved_by=request.user.get_username(),
                )
                for letter in queryset.order_by("pk")
            )
            self.message_user(request, _("%(count)d letter(s) closed.") % {"count": closed}, messages.SUCCESS)
            return None
        return render(
            request,
            "admin/boissipay/deadletter/resolve.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Close dead letters without replaying them"),
                "form": form,
                "letters": queryset,
                "action": "resolve",
                "checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Replay selected events with their handler", permissions=["operate"])
    def replay(self, request, queryset):
        replayed = failed = 0
        for letter in queryset.filter(replayed_at__isnull=True, resolved_at__isnull=True).order_by("pk"):
            if services.replay_dead_letter(dead_letter_id=letter.pk, replayed_by=request.user.get_username()):
                replayed += 1
            else:
                failed += 1
        if replayed:
            self.message_user(request, _("%(count)d event(s) replayed.") % {"count": replayed}, messages.SUCCESS)
        if failed:
            self.message_user(
                request, _("%(count)d event(s) failed again; see their error.") % {"count": failed}, messages.ERROR
            )
