from django.urls import path

from . import views

app_name = "workflows"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:task_id>/", views.task_page, name="task"),
]
