"""Admin: the outbox with its failed and dead deliveries (and a retry), the inboxes, preferences."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import InboxItem, Notification, OutboxEvent, Preference


class ProblemFilter(admin.SimpleListFilter):
    title = _("problems")
    parameter_name = "problem"

    def lookups(self, request, model_admin):
        return [("failing", _("failed or dead")), ("stuck", _("not sent yet"))]

    def queryset(self, request, queryset):
        if self.value() == "failing":
            return queryset.filter(
                status__in=[Notification.Status.FAILED, Notification.Status.DEAD]
            )
        if self.value() == "stuck":
            return queryset.filter(
                status__in=[Notification.Status.PENDING, Notification.Status.SENDING]
            )
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "channel",
        "audience",
        "recipient",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    ]
    list_filter = [ProblemFilter, "status", "channel", "kind"]
    search_fields = ["key", "case__reference"]
    list_select_related = ["recipient"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_selected"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send the selected failed or dead notifications again"))
    def retry_selected(self, request, queryset):
        count = services.retry_notifications(
            queryset.values_list("pk", flat=True), actor=request.user
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d notification queued again.",
                "%(count)d notifications queued again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """One row per event that tells someone; the workers fan it out to the rows above."""

    list_display = ["id", "kind", "case_id", "event_id", "created_at", "fanned_out_at"]
    list_filter = ["kind"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(InboxItem)
class InboxItemAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "kind", "subject", "created_at", "read_at"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in InboxItem._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "inapp", "email", "sms", "webhook", "language"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
