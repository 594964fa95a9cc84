"""The youth's own data: see what is kept, download it (JSON), ask for it to be erased.

Each action calls one service in ``casework.services.privacy``; a refused erasure
(a case still open) shows the service's reason on the page.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from ..errors import CaseworkError
from ..services import privacy


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that my name, contact details and what I wrote will be erased."),
    )


def _page(request, form=None, *, error=None, status=200):
    user = request.user
    context = {
        "form": form or EraseForm(),
        "error": error,
        "profile": {
            "username": user.username,
            "display_name": user.display_name,
            "phone": user.phone,
            "email": user.email,
            "birth_date": user.birth_date,
            "is_minor": privacy.is_minor(user),
        },
        "case_count": user.cases.count(),
        "consent": privacy.active_guardian_consent(user),
    }
    return render(request, "casework/privacy/my_data.html", context, status=status)


@login_required
def my_data(request):
    """What the platform keeps about the signed-in person, with export and erasure."""
    return _page(request)


@login_required
def export(request):
    """Download everything about the signed-in youth as one JSON file."""
    data = privacy.export_personal_data(youth=request.user, actor=request.user)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="youthvoice-my-data-{stamp}.json"'
    return response


@login_required
@require_POST
def erase(request):
    """Erase the signed-in youth's personal data; refused with the reason while a case is open."""
    form = EraseForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        privacy.erase_personal_data(youth=request.user, actor=request.user, reason="own request")
    except CaseworkError as exc:
        return _page(request, form, error=exc.message, status=409)
    logout(request)
    return render(request, "casework/privacy/erased.html")


urlpatterns = [
    path("my/data/", my_data, name="my_data"),
    path("my/data/export.json", export, name="my_data_export"),
    path("my/data/erase/", erase, name="my_data_erase"),
]
