"""Page-number pagination: ``?page=2&page_size=50`` (at most 100 a page).

Two things keep a page cheap on large tables (docs/performance.md, issue 8):

- the total (``count``) is counted without the joins ``select_related`` adds: a
  list of cases joins its organisation, category and people for the page, but
  counting needs none of them (with them PostgreSQL hashed whole tables);
- the page is chosen first, as bare ids in the list's order (an index and a
  top-N sort of the matching rows), and only those rows are then read with
  their joined rows, by primary key. Reading the joins for every matching row
  and sorting the wide result made PostgreSQL hash the user and organisation
  tables and plan a seven-table join for twenty rows.
"""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination


class LeanPaginator(Paginator):
    """A Django paginator that counts without joins and reads the page by its ids.

    ``rows``, when given, reads the page's rows: ``rows(ids) -> {id: object}`` (the
    case list's reads them with one prepared statement, ``selectors.cases_by_ids``).
    """

    def __init__(self, object_list, per_page, *args, rows=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.rows = rows

    @cached_property
    def count(self):
        if isinstance(self.object_list, QuerySet):
            return self.object_list.select_related(None).count()
        return super().count

    def page(self, number):
        if not isinstance(self.object_list, QuerySet):
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.select_related(None).values_list("pk", flat=True)[bottom:top])
        if self.rows is not None:
            by_id = self.rows(ids)
        else:
            by_id = self.object_list.order_by().filter(pk__in=ids).in_bulk()
        return Page([by_id[pk] for pk in ids if pk in by_id], number, self)


class Pagination(PageNumberPagination):
    """A view with a ``page_rows(ids)`` method reads its page's rows with it."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        self.page_rows = getattr(view, "page_rows", None)
        return super().paginate_queryset(queryset, request, view)

    def django_paginator_class(self, object_list, per_page):
        return LeanPaginator(object_list, per_page, rows=getattr(self, "page_rows", None))
