"""/api/: the REST API, its OpenAPI schema and documentation page."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import intake, oversight, views, views_stations

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("categories/", views.CategoryList.as_view(), name="categories"),
    path("organisations/", views.OrganisationList.as_view(), name="organisations"),
    path("cases/", views.CaseList.as_view(), name="cases"),
    path("cases/<str:reference>/", views.CaseDetail.as_view(), name="case"),
    path("cases/<str:reference>/events/", views.CaseEvents.as_view(), name="case-events"),
    path("cases/<str:reference>/messages/", views.CaseMessages.as_view(), name="case-messages"),
    path("cases/<str:reference>/comment/", views.CaseComment.as_view(), name="case-comment"),
    path("cases/<str:reference>/refer/", views.CaseRefer.as_view(), name="case-refer"),
    *[
        path(
            f"cases/<str:reference>/{action.name}/",
            views.action_view(action),
            name=f"case-{action.name}",
        )
        for action in views.ACTIONS
    ],
    path("cases/<str:reference>/evidence/", oversight.CaseEvidence.as_view(), name="evidence"),
    path(
        "cases/<str:reference>/evidence/<str:evidence_id>/file/",
        oversight.EvidenceFile.as_view(),
        name="evidence-file",
    ),
    path(
        "cases/<str:reference>/complaints/",
        oversight.CaseComplaints.as_view(),
        name="case-complaints",
    ),
    path("cases/<str:reference>/report/", oversight.CaseReport.as_view(), name="case-report"),
    path("cases/<str:reference>/reports/", oversight.CaseReports.as_view(), name="case-reports"),
    path("cases/<str:reference>/review/", oversight.CaseReview.as_view(), name="case-review"),
    path("complaints/", oversight.ComplaintList.as_view(), name="complaints"),
    path(
        "complaints/<str:complaint_id>/answer/",
        oversight.ComplaintAnswer.as_view(),
        name="complaint-answer",
    ),
    path("supervisor/dashboard/", oversight.SupervisorDashboard.as_view(), name="dashboard"),
    path("supervisor/export/cases.csv", oversight.ExportCases.as_view(), name="export-cases"),
    path(
        "supervisor/export/timelines.csv",
        oversight.ExportTimelines.as_view(),
        name="export-timelines",
    ),
    # Station directory and verification visits (views_stations).
    path("stations/", views_stations.StationList.as_view(), name="stations"),
    path(
        "stations/<str:station_id>/slots/",
        views_stations.StationSlots.as_view(),
        name="station-slots",
    ),
    path("cases/<str:reference>/visit/", views_stations.CaseVisit.as_view(), name="case-visit"),
    *[
        path(
            f"cases/<str:reference>/{action.name}/",
            views.action_view(action),
            name=f"case-{action.name}",
        )
        for action in views_stations.VISIT_ACTIONS
    ],
    path("tasks/", views.TaskList.as_view(), name="tasks"),
    path("tasks/<str:task_id>/complete/", views.TaskComplete.as_view(), name="task-complete"),
    path("tasks/<str:task_id>/waive/", views.TaskWaive.as_view(), name="task-waive"),
    path("intake/handoffs/", intake.HandoffCreate.as_view(), name="intake-handoffs"),
    path("intake/cases/", intake.IntakeCreate.as_view(), name="intake-cases"),
    path("claims/", intake.ClaimCreate.as_view(), name="claims"),
    path("public/cases/<str:token>/", views.PublicCase.as_view(), name="public-case"),
    # Anything else under /api/: the API's own 404 body, never an HTML page.
    re_path(r"^.*$", views.not_found, name="not-found"),
]
