"""Read-only admin for the flow rows: the engine writes them, people only look."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .models import CalendarDay, CaseProcess, CaseTask, SlaPolicy, WorkingHours


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CaseProcess)
class CaseProcessAdmin(ReadOnlyAdmin):
    list_display = ["pk", "case", "status", "created", "finished"]
    list_filter = ["status"]
    list_select_related = ["case"]
    search_fields = ["case__reference"]


@admin.register(CaseTask)
class CaseTaskAdmin(ReadOnlyAdmin):
    list_display = ["pk", "case", "flow_task", "status", "org", "owner", "created", "finished"]
    list_filter = ["status", "flow_task_type"]
    list_select_related = ["case", "org", "owner"]
    search_fields = ["case__reference"]
    exclude = ["previous"]


# --- SLA policies and business calendar (helper E) ---------------------------


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "accept_hours",
        "verify_hours",
        "resolve_hours",
        "feedback_hours",
        "reminder_fraction",
        "rating_window_days",
        "updated_at",
    ]
    list_filter = ["category", "urgency"]
    list_select_related = ["category"]


@admin.register(WorkingHours)
class WorkingHoursAdmin(admin.ModelAdmin):
    list_display = ["__str__", "weekend", "updated_at"]

    def has_add_permission(self, request):
        return not WorkingHours.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ["date", "kind", "name", "source", "updated_at"]
    list_filter = ["kind", "source"]
    date_hierarchy = "date"
    search_fields = ["name"]
    readonly_fields = ["source"]
    actions = ["reload_from_package"]

    def save_model(self, request, obj, form, change):
        # A day saved here is the administrator's: a package reload leaves it alone.
        obj.source = CalendarDay.Source.ADMIN
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Reload this year and next from the chinese_calendar package"))
    def reload_from_package(self, request, queryset):
        from django.utils import timezone

        from .sla import load_calendar

        year = timezone.localdate().year
        for loaded_year, count in load_calendar([year, year + 1]).items():
            if count is None:
                self.message_user(
                    request,
                    _("%(year)s is not covered by the installed package yet.")
                    % {"year": loaded_year},
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    _("%(year)s: %(count)s day(s) written.")
                    % {"year": loaded_year, "count": count},
                )
