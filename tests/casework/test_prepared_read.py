"""``casework.prepared.ModelRead`` makes the same objects as the ORM's own read."""

import pytest
from django.db import transaction
from django.db.models.signals import post_init

from casework.locks import lock_case
from casework.models import Case
from casework.states import CaseState
from tests.casework.steps import case_in

pytestmark = pytest.mark.django_db


def _columns(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_the_locked_case_is_the_case_the_orm_reads(tree):
    case = case_in(tree, CaseState.COORDINATING)
    with transaction.atomic():
        locked = lock_case(case.pk, actor=tree.handler, message=True)
    read = Case.objects.select_related("org", "category").get(pk=case.pk)
    # every column, decrypted and converted as the ORM does
    assert _columns(locked) == _columns(read)
    assert locked.title == read.title and locked.description == read.description
    # its organisation and category, linked both ways as select_related links them
    assert _columns(locked.org) == _columns(read.org)
    assert _columns(locked.category) == _columns(read.category)
    assert locked._state.fields_cache.keys() == read._state.fields_cache.keys()
    # loaded from the database, not new
    for obj in (locked, locked.org, locked.category):
        assert (obj._state.adding, obj._state.db) == (False, "default")
    # the state stays protected: only a transition moves it
    with pytest.raises(AttributeError):
        locked.state = CaseState.CLOSED
    assert locked.state == CaseState.COORDINATING


def test_a_post_init_listener_still_hears_of_each_object(tree):
    case = case_in(tree, CaseState.COORDINATING)
    heard = []

    def listener(sender, instance, **kwargs):
        heard.append((sender, instance.pk))

    post_init.connect(listener)
    try:
        with transaction.atomic():
            locked = lock_case(case.pk, actor=tree.handler)
    finally:
        post_init.disconnect(listener)
    assert (Case, case.pk) in heard
    assert (type(locked.org), locked.org_id) in heard
    assert (type(locked.category), locked.category_id) in heard
    assert _columns(locked) == _columns(Case.objects.get(pk=case.pk))
