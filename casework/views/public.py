"""Pages of the public area (see casework/views/__init__.py)."""

from django.shortcuts import redirect
from django.urls import path


def stats(request):
    return redirect("/")


urlpatterns = [
    path("stats/", stats, name="public_stats"),
]
