"""API endpoints for what the pages do beyond case actions.

- evidence: list, upload (multipart; the checks of casework/services/evidence.py) and
  download, for the staff of the case;
- complaints: the youth complains, the supervisors above answer;
- reports of fake or abusive cases, and the supervisors' review of them;
- the supervisor dashboard's figures and its two CSV exports.

Same rules as casework/api/views.py: a case the caller may not see is a 404
(casework.selectors.cases_visible_to via ``visible_case``), the services decide
what they may do (403), every write is one service call.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import FileResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.services.evidence import evidence_add
from casework.services.privacy import record_personal_data_access

from .. import permissions, services
from .. import selectors as case_selectors
from ..errors import NotPermitted
from ..models import Case, Complaint, Evidence, Report, Review
from ..selectors import supervised_paths
from ..views import supervisor as supervisor_pages
from . import selectors
from .errors import CaseNotVisible, log_refusal
from .serializers import OrgRefSerializer, PersonRefSerializer, StrictInput, VersionedInput
from .views import IF_MATCH, REFERENCE_RE, expected_version, visible_case


def _staff_only(request, case: Case) -> None:
    """Evidence and reports are for the staff of the case (handlers, verifiers, supervisors)."""
    if permissions.case_access(case, request.user) != permissions.ACCESS_STAFF:
        log_refusal(request, "forbidden")
        raise NotPermitted()


class AnyAcceptMixin:
    """Endpoints answering files: errors are JSON whatever the Accept header asked for."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


# --- evidence ------------------------------------------------------------------------------


class EvidenceSerializer(serializers.ModelSerializer):
    uploaded_by = PersonRefSerializer(read_only=True)

    class Meta:
        model = Evidence
        fields = ["id", "content_type", "size", "sha256", "created_at", "uploaded_by"]
        read_only_fields = fields


class EvidenceInput(VersionedInput):
    # Empty files reach the service, which says so in the one error format.
    file = serializers.FileField(allow_empty_file=True, use_url=False)


class CaseEvidence(APIView):
    """The files attached to a case (staff of the case), and attaching one."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=EvidenceSerializer(many=True), tags=["evidence"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        _staff_only(request, case)
        evidence = Evidence.objects.filter(case=case).select_related("uploaded_by")
        return Response(EvidenceSerializer(evidence, many=True).data)

    @extend_schema(
        request={"multipart/form-data": EvidenceInput},
        responses={201: EvidenceSerializer},
        parameters=[IF_MATCH],
        tags=["evidence"],
        summary="Attach a JPEG, PNG or PDF file (at most CASEWORK_EVIDENCE_MAX_BYTES).",
    )
    def post(self, request, reference: str):
        case = visible_case(request, reference)
        data = EvidenceInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = expected_version(request, {"version": values.pop("version", None)})
        evidence = evidence_add(
            case=case.pk, actor=request.user, file=values["file"], expected_version=version
        )
        return Response(EvidenceSerializer(evidence).data, status=status.HTTP_201_CREATED)


EVIDENCE_ID = OpenApiParameter("evidence_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class EvidenceFile(AnyAcceptMixin, APIView):
    """Download one evidence file (staff of the case); the access is logged."""

    @extend_schema(
        parameters=[EVIDENCE_ID],
        responses={
            (200, content_type): OpenApiResponse(OpenApiTypes.BINARY)
            for content_type in Evidence.ContentType.values
        },
        tags=["evidence"],
    )
    def get(self, request, reference: str, evidence_id: str):
        case = visible_case(request, reference)
        _staff_only(request, case)
        evidence = None
        if evidence_id.isdigit() and len(evidence_id) < 19:
            evidence = Evidence.objects.filter(case=case, pk=int(evidence_id)).first()
        if evidence is None:
            raise CaseNotVisible(_("No such file."))
        record_personal_data_access(actor=request.user, case=case, fields=("evidence",))
        try:
            handle = evidence.file.open("rb")
        except FileNotFoundError:
            raise CaseNotVisible(_("The file is missing from storage.")) from None
        extension = evidence.file.name.rsplit(".", 1)[-1]
        response = FileResponse(
            handle,
            content_type=evidence.content_type,
            as_attachment=True,
            filename=f"{case.reference}-evidence-{evidence.pk}.{extension}",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


# --- complaints ----------------------------------------------------------------------------


class ComplaintSerializer(serializers.ModelSerializer):
    case = serializers.SlugRelatedField(slug_field="reference", read_only=True)
    org = OrgRefSerializer(read_only=True)

    class Meta:
        model = Complaint
        fields = [
            "id",
            "case",
            "org",
            "status",
            "body",
            "due_at",
            "created_at",
            "answer",
            "answered_at",
        ]
        read_only_fields = fields


class ComplaintInput(StrictInput):
    body = serializers.CharField(max_length=5000)


class ComplaintAnswerInput(StrictInput):
    answer = serializers.CharField(max_length=5000)


def complaints_visible_to(user):
    """The complaints a person may see: their own, and those about organisations they supervise.

    One scoping function for the list and the answer endpoint, so the two agree.
    """
    if user is None or not user.is_authenticated:
        return Complaint.objects.none()
    if user.is_superuser:
        return Complaint.objects.all()
    query = Q(author=user)
    for path in supervised_paths(user):
        query |= Q(org__path__startswith=path)
    return Complaint.objects.filter(query)


def _youth_or_staff(request, case: Case) -> str:
    access = permissions.case_access(case, request.user)
    if access not in (permissions.ACCESS_STAFF, permissions.ACCESS_YOUTH):
        log_refusal(request, "forbidden")
        raise NotPermitted()
    return access


class CaseComplaints(APIView):
    """A case's complaints (the youth and staff), and complaining about the handling (the youth)."""

    @extend_schema(responses=ComplaintSerializer(many=True), tags=["complaints"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        _youth_or_staff(request, case)
        complaints = Complaint.objects.filter(case=case).select_related("case", "org")
        return Response(ComplaintSerializer(complaints, many=True).data)

    @extend_schema(
        request=ComplaintInput, responses={201: ComplaintSerializer}, tags=["complaints"]
    )
    def post(self, request, reference: str):
        case = visible_case(request, reference)
        data = ComplaintInput(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_submit(
            case=case.pk, actor=request.user, body=data.validated_data["body"]
        )
        complaint = Complaint.objects.select_related("case", "org").get(pk=complaint.pk)
        return Response(ComplaintSerializer(complaint).data, status=status.HTTP_201_CREATED)


class ComplaintList(generics.ListAPIView):
    """Complaints: a youth's own, and for supervisors those about their subtree (``status``)."""

    serializer_class = ComplaintSerializer
    filterset_fields = ["status"]

    def get_queryset(self):
        return (
            complaints_visible_to(self.request.user)
            .select_related("case", "org")
            .order_by("due_at", "pk")
        )

    @extend_schema(tags=["complaints"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


COMPLAINT_ID = OpenApiParameter("complaint_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class ComplaintAnswer(APIView):
    """A supervisor above the organisation complained about answers the complaint."""

    @extend_schema(
        request=ComplaintAnswerInput,
        responses={200: ComplaintSerializer},
        parameters=[COMPLAINT_ID],
        tags=["complaints"],
    )
    def post(self, request, complaint_id: str):
        found = None
        if complaint_id.isdigit() and len(complaint_id) < 19:
            found = complaints_visible_to(request.user).filter(pk=int(complaint_id)).first()
        if found is None:
            log_refusal(request, "not_found")
            raise CaseNotVisible(_("No such complaint."))
        data = ComplaintAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.complaint_answer(
            complaint=found.pk, actor=request.user, answer=data.validated_data["answer"]
        )
        complaint = Complaint.objects.select_related("case", "org").get(pk=found.pk)
        return Response(ComplaintSerializer(complaint).data)


# --- reports and their review ---------------------------------------------------------------


class ReportSerializer(serializers.ModelSerializer):
    """A report as staff see it: what was reported and when, never who reported it."""

    reviewed = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "created_at", "reviewed"]
        read_only_fields = fields

    def get_reviewed(self, report) -> bool:
        return report.review_id is not None


class ReportInput(StrictInput):
    kind = serializers.ChoiceField(choices=Report.Kind.choices)


class ReviewInput(StrictInput):
    decision = serializers.ChoiceField(choices=Review.Decision.choices)
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class ReviewSerializer(serializers.ModelSerializer):
    reports = serializers.IntegerField(source="reports.count", read_only=True)
    hidden_from_public = serializers.BooleanField(source="case.hidden_from_public", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "decision", "note", "created_at", "reports", "hidden_from_public"]
        read_only_fields = fields


def reportable_case(request, reference: str) -> Case:
    """A case the caller sees, or any public one (its reference is on the public page)."""
    case = selectors.case_for(request.user, reference) if REFERENCE_RE.match(reference) else None
    if case is None and REFERENCE_RE.match(reference):
        case = Case.objects.filter(reference=reference, is_public=True).first()
    if case is None:
        log_refusal(request, "not_found")
        raise CaseNotVisible()
    return case


class CaseReport(APIView):
    """Report a case as fake, abusive or untrue (or confirm it true); one report per person."""

    @extend_schema(request=ReportInput, responses={201: ReportSerializer}, tags=["reports"])
    def post(self, request, reference: str):
        case = reportable_case(request, reference)
        data = ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.report_submit(
            case=case.pk, actor=request.user, kind=data.validated_data["kind"]
        )
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


class CaseReports(APIView):
    """The reports on a case, for its staff (no reporter's identity)."""

    @extend_schema(responses=ReportSerializer(many=True), tags=["reports"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        _staff_only(request, case)
        return Response(ReportSerializer(Report.objects.filter(case=case), many=True).data)


class CaseReview(APIView):
    """A supervisor decides on the pending reports: show the case again or keep it hidden."""

    @extend_schema(request=ReviewInput, responses={200: ReviewSerializer}, tags=["reports"])
    def post(self, request, reference: str):
        case = visible_case(request, reference)
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_decide(case=case.pk, actor=request.user, **data.validated_data)
        review = Review.objects.select_related("case").get(pk=review.pk)
        return Response(ReviewSerializer(review).data)


# --- the supervisor dashboard and exports ----------------------------------------------------


DASHBOARD_FILTERS = [
    OpenApiParameter("org", OpenApiTypes.INT, description="a supervised organisation (subtree)"),
    OpenApiParameter("category", OpenApiTypes.INT, description="a category id"),
    OpenApiParameter("weeks", OpenApiTypes.INT, description="the window in weeks (default 12)"),
]


class StateCountSerializer(serializers.Serializer):
    state = serializers.CharField()
    open = serializers.IntegerField()
    overdue = serializers.IntegerField()


class BranchSerializer(serializers.Serializer):
    org = OrgRefSerializer(allow_null=True)
    total = serializers.IntegerField()
    open = serializers.IntegerField()
    overdue = serializers.IntegerField()
    finished = serializers.IntegerField()
    on_time = serializers.IntegerField()
    reopened = serializers.IntegerField()
    on_time_rate = serializers.FloatField(allow_null=True)
    reopen_rate = serializers.FloatField(allow_null=True)


class OverdueCaseSerializer(serializers.Serializer):
    reference = serializers.CharField()
    state = serializers.CharField()
    org = OrgRefSerializer()
    stage_due_at = serializers.DateTimeField(allow_null=True)


class DashboardSerializer(serializers.Serializer):
    org = OrgRefSerializer()
    category = serializers.CharField(allow_null=True)
    weeks = serializers.IntegerField()
    since = serializers.DateTimeField()
    as_of = serializers.DateTimeField(
        allow_null=True,
        help_text="When the dashboard rollup behind these counts was rebuilt; null: never.",
    )
    open_total = serializers.IntegerField()
    overdue_total = serializers.IntegerField()
    escalations_total = serializers.IntegerField()
    escalations_sla = serializers.IntegerField()
    open_by_state = StateCountSerializer(many=True)
    branches = BranchSerializer(many=True)
    week_starts = serializers.ListField(child=serializers.DateField())
    submitted_per_week = serializers.ListField(child=serializers.IntegerField())
    closed_per_week = serializers.ListField(child=serializers.IntegerField())
    escalations_per_week = serializers.ListField(child=serializers.IntegerField())
    overdue_cases = OverdueCaseSerializer(many=True)


class SupervisorDashboard(APIView):
    """The figures of the supervisor console for a subtree the caller supervises (else 403)."""

    @extend_schema(
        parameters=DASHBOARD_FILTERS, responses=DashboardSerializer, tags=["supervision"]
    )
    def get(self, request):
        scope, _form = supervisor_pages.dashboard_scope(request)
        stats = case_selectors.dashboard(
            scope.root,
            since=scope.since,
            now=scope.now,
            category_id=scope.category.pk if scope.category else None,
        )
        body = {
            "org": scope.root,
            "category": scope.category.code if scope.category else None,
            "weeks": scope.weeks,
            "since": scope.since,
            "as_of": stats.as_of,
            "open_total": stats.open_total,
            "overdue_total": stats.overdue_total,
            "escalations_total": stats.escalations_total,
            "escalations_sla": stats.escalations_sla,
            "open_by_state": [
                {"state": state, "open": n, "overdue": overdue}
                for state, n, overdue in stats.open_by_state
            ],
            "branches": [
                {
                    "org": b.org,
                    "total": b.total,
                    "open": b.open,
                    "overdue": b.overdue,
                    "finished": b.finished,
                    "on_time": b.on_time,
                    "reopened": b.reopened,
                    "on_time_rate": b.on_time_rate,
                    "reopen_rate": b.reopen_rate,
                }
                for b in stats.branches
            ],
            "week_starts": [_as_date(week) for week in stats.weeks],
            "submitted_per_week": stats.submitted_per_week,
            "closed_per_week": stats.closed_per_week,
            "escalations_per_week": stats.escalations_per_week,
            "overdue_cases": stats.overdue_cases,
        }
        return Response(DashboardSerializer(body).data)


def _as_date(value):
    return value.date() if hasattr(value, "date") and callable(value.date) else value


CSV_RESPONSE = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)}


class ExportCases(AnyAcceptMixin, APIView):
    """The cases of the dashboard's view as CSV (nothing about the youth), streamed."""

    @extend_schema(
        parameters=DASHBOARD_FILTERS,
        responses=CSV_RESPONSE,
        tags=["supervision"],
        operation_id="supervisor_export_cases",
    )
    def get(self, request):
        scope, _form = supervisor_pages.dashboard_scope(request)
        stamp = scope.now.strftime("%Y%m%d")
        return supervisor_pages.stream_csv(
            f"cases-{stamp}.csv",
            supervisor_pages.CASE_COLUMNS,
            case_selectors.export_case_rows(scope.cases()),
        )


class ExportTimelines(AnyAcceptMixin, APIView):
    """The timelines of the cases in view as CSV: no payloads, no free text."""

    @extend_schema(
        parameters=DASHBOARD_FILTERS,
        responses=CSV_RESPONSE,
        tags=["supervision"],
        operation_id="supervisor_export_timelines",
    )
    def get(self, request):
        scope, _form = supervisor_pages.dashboard_scope(request)
        stamp = scope.now.strftime("%Y%m%d")
        return supervisor_pages.stream_csv(
            f"timelines-{stamp}.csv",
            supervisor_pages.TIMELINE_COLUMNS,
            case_selectors.export_timeline_rows(scope.cases()),
        )
