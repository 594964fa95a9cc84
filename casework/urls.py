from django.urls import path

from .views import cases, intake, privacy, public, staff, stations, supervisor, youth

app_name = "casework"
urlpatterns = [
    path("", cases.home, name="home"),
    path("cases/", cases.case_list, name="case_list"),
    path("cases/<str:reference>/", cases.case_detail, name="case_detail"),
    *intake.urlpatterns,
    *youth.urlpatterns,
    *public.urlpatterns,
    *staff.urlpatterns,
    *supervisor.urlpatterns,
    *privacy.urlpatterns,
    *stations.urlpatterns,
]
