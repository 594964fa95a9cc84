"""Filters of the case and task lists (query parameters, all optional)."""

import django_filters
from django import forms

from ..models import Case, CoordinationTask
from ..states import CaseState


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number in the database's range (never a 500 for a huge one)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class CaseFilter(django_filters.FilterSet):
    # distinct=False: the state is the case's own column, so no row can repeat; django-filter's
    # default DISTINCT would sort every selected column (encrypted texts included) at scale.
    state = django_filters.MultipleChoiceFilter(choices=CaseState.choices, distinct=False)
    category = django_filters.CharFilter(field_name="category__code")
    urgency = django_filters.ChoiceFilter(choices=Case.Urgency.choices)
    channel = django_filters.ChoiceFilter(choices=Case.Channel.choices)
    org = IdFilter(field_name="org_id")
    reference = django_filters.CharFilter()
    sla_breached = django_filters.BooleanFilter()
    submitted_after = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(
        fields=(("submitted_at", "submitted_at"), ("stage_due_at", "stage_due_at"))
    )

    class Meta:
        model = Case
        fields = []


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=CoordinationTask.Status.choices)
    case = django_filters.CharFilter(field_name="case__reference")

    class Meta:
        model = CoordinationTask
        fields = []
