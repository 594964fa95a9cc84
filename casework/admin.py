"""Django admin: configuration is editable; cases and everything on their timeline are not.

A case changes only through ``casework.services`` (which keep the timeline, the
hash chain and the human tasks in step), so the admin shows cases, events,
coordination tasks, verifications and ratings read-only.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from treebeard.admin import TreeAdmin
from treebeard.forms import movenodeform_factory

from .models import (
    Case,
    CaseEvent,
    Category,
    CoordinationTask,
    Membership,
    Organisation,
    Rating,
    Region,
    User,
    Verification,
)
from .services import privacy


class ReadOnlyAdminMixin:
    """View only: no add, change or delete, whoever asks."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "organisation"]


@admin.register(Organisation)
class OrganisationAdmin(TreeAdmin):
    form = movenodeform_factory(Organisation)
    list_display = ["name", "level", "kind", "region_code", "capacity", "is_active"]
    list_filter = ["kind", "level", "is_active", "routes_by_region"]
    search_fields = ["name", "name_en", "region_code"]
    filter_horizontal = ["categories"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organisation__name"]  # names are encrypted
    autocomplete_fields = ["user", "organisation"]
    list_select_related = ["user", "organisation"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "sensitive", "difficulty_weight", "ordering"]
    list_editable = ["ordering"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "level", "parent"]
    list_filter = ["level"]
    search_fields = ["code", "name", "name_en"]
    list_select_related = ["parent"]
    autocomplete_fields = ["parent"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (
            _("Casework"),
            {"fields": ("display_name", "phone", "birth_date", "region_code", "requires_2fa")},
        ),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        (_("Casework"), {"fields": ("display_name", "region_code")}),
    )
    list_display = ["username", "display_name", "region_code", "is_staff", "is_active"]
    # Name, e-mail and phone are encrypted: they are found by an exact value
    # (case and spaces ignored) through their search digests, the username by part.
    search_fields = ["username"]
    search_help_text = _(
        "Part of a username, or a person's exact name, e-mail address or phone number."
    )
    inlines = [MembershipInline]

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            found |= queryset.filter(pk__in=privacy.find_people(search_term).values("pk"))
        return found, may_have_duplicates


class CaseEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ["seq", "kind", "from_state", "to_state", "actor", "org", "at", "hash"]
    readonly_fields = fields
    ordering = ["seq"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "org")


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["reference", "category", "state", "org", "assignee", "stage_due_at"]
    list_filter = ["state", "category", "urgency", "sla_breached"]
    search_fields = ["reference"]
    list_select_related = ["category", "org", "assignee"]
    date_hierarchy = "submitted_at"
    # Everything is read-only (no change permission); these fields say why at a glance.
    readonly_fields = ["state", "version", "last_event_seq", "last_event_hash"]
    exclude = ["public_token"]
    inlines = [CaseEventInline]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        # The page shows the youth's words: an access like any other (docs/privacy.md).
        case = Case.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if case is not None and response.status_code == 200:
            _log_admin_case_access(request, case)
        return response


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "seq", "kind", "from_state", "to_state", "actor", "org", "at"]
    list_filter = ["kind"]
    search_fields = ["case__reference"]
    list_select_related = ["case", "actor", "org"]


@admin.register(CoordinationTask)
class CoordinationTaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "partner", "status", "required", "due_at", "finished_at"]
    list_filter = ["status", "required"]
    search_fields = ["case__reference", "partner__name"]
    list_select_related = ["case", "partner"]


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "verifier", "station", "confirmed", "created_at"]
    list_filter = ["confirmed"]
    search_fields = ["case__reference"]
    list_select_related = ["case", "verifier", "station"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "timeliness", "attitude", "outcome", "solved", "created_at"]
    list_filter = ["solved"]
    search_fields = ["case__reference"]
    list_select_related = ["case"]


# --- personal data protection (helper I) ---
from .models import AccessLog, GuardianConsent, PrivacyRequest  # noqa: E402


def _log_admin_case_access(request, case) -> None:
    from .services.privacy import record_personal_data_access

    record_personal_data_access(actor=request.user, case=case, purpose="administration")


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Supervisors review who opened which youth's personal data, and why."""

    list_display = ["at", "actor", "case", "org", "purpose"]
    list_filter = ["purpose"]
    search_fields = ["case__reference", "actor__username"]
    date_hierarchy = "at"
    list_select_related = ["actor", "case", "org"]


@admin.register(GuardianConsent)
class GuardianConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["youth", "relationship", "method", "given_at", "recorded_by", "revoked_at"]
    list_filter = ["method"]
    search_fields = ["youth__username"]
    list_select_related = ["youth", "recorded_by"]


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "youth", "kind", "status", "reason"]
    list_filter = ["kind", "status"]
    search_fields = ["youth__username"]


# Offline stations: profiles, hours, exceptions, slots, appointments.
from . import admin_stations  # noqa: E402,F401
