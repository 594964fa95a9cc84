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


class StaticFilterSet(django_filters.FilterSet):
    """A filter set whose form does not depend on the request: its form class is built
    once per process instead of for every request (django-filter makes a new form field
    for every filter and a new form class each time). Only for filters without
    per-request querysets or choices."""

    def get_form_class(self):
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class
        return form_class


class CaseFilter(StaticFilterSet):
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


class TaskFilter(StaticFilterSet):
    status = django_filters.ChoiceFilter(choices=CoordinationTask.Status.choices)
    case = django_filters.CharFilter(field_name="case__reference")

    class Meta:
        model = CoordinationTask
        fields = []
