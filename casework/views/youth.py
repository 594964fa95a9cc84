"""Pages of the youth area (see casework/views/__init__.py)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import path


@login_required
def my_cases(request):
    return redirect("casework:case_list")


@login_required
def new_case(request):
    return redirect("casework:case_list")


def register(request):
    return redirect("login")


urlpatterns = [
    path("my/", my_cases, name="youth_cases"),
    path("my/new/", new_case, name="youth_new"),
    path("register/", register, name="register"),
]
