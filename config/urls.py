from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tasks/", include("workflows.urls")),
    path("notifications/", include("notifications.urls")),
    path("", include("casework.urls")),
]
