from django.contrib import admin
from django.urls import include, path

from casework.security import SecureLoginView, password_reset_unavailable

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Throttled sign-in with TOTP for flagged staff; e-mail resets cannot work with
    # encrypted addresses (docs/privacy.md), so that page explains what to do instead.
    path("accounts/login/", SecureLoginView.as_view(), name="login"),
    path("accounts/password_reset/", password_reset_unavailable, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tasks/", include("workflows.urls")),
    path("notifications/", include("notifications.urls")),
    path("api/", include("casework.api.urls")),
    path("open311/v2/", include("casework.open311.urls")),
    path("", include("casework.urls")),
]
