"""The in-app inbox and the preferences page: read through selectors, write through services."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from casework.errors import CaseworkError

from . import selectors, services
from .models import Preference

ITEMS_PER_PAGE = 30


@login_required
def inbox(request):
    """The signed-in person's messages, newest first, with the unread count."""
    unread_only = request.GET.get("unread") == "1"
    page = Paginator(
        selectors.inbox_for(request.user, unread_only=unread_only), ITEMS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/inbox.html",
        {
            "page": page,
            "unread": selectors.unread_count(request.user),
            "unread_only": unread_only,
        },
    )


@login_required
def unread(request):
    return JsonResponse({"unread": selectors.unread_count(request.user)})


def _ids(values) -> list[int]:
    """Row ids from the form: ASCII digits that fit a database integer; the rest is ignored."""
    return [int(v) for v in map(str, values) if v.isascii() and v.isdigit() and len(v) <= 18]


def _safe_next(request) -> str:
    """Back to a page of this site only: never an open redirect to another host."""
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("notifications:inbox")


@login_required
@require_POST
def mark_read(request):
    services.mark_read(user=request.user, item_ids=_ids(request.POST.getlist("item")))
    return redirect(_safe_next(request))


@login_required
@require_POST
def mark_all_read(request):
    count = services.mark_all_read(user=request.user)
    messages.success(request, _("%(count)d messages marked read.") % {"count": count})
    return redirect("notifications:inbox")


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = Preference
        fields = ["inapp", "email", "sms", "webhook", "language", "quiet_start", "quiet_end"]
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }


@login_required
def preferences(request):
    """Each person chooses their channels, language and SMS quiet hours."""
    current = Preference.objects.filter(user=request.user).first()
    form = PreferenceForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.set_preferences(user=request.user, **form.cleaned_data)
        except CaseworkError as error:
            for field, errors in error.field_errors.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, _("Your notification preferences are saved."))
            return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})
