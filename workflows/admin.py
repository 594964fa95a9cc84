"""Read-only admin for the flow rows: the engine writes them, people only look."""

from django.contrib import admin

from .models import CaseProcess, CaseTask


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
