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


def test_the_locked_case_opens_its_encrypted_columns_only_when_read(tree, monkeypatch):
    from casework import crypto
    from casework.locks import changed_fields

    case = case_in(tree, CaseState.COORDINATING)
    title = Case.objects.get(pk=case.pk).title
    opened = []
    real = crypto.decrypt
    # empty values (an outcome note not written yet) are converted at once, as before
    monkeypatch.setattr(
        crypto, "decrypt", lambda value: (value and opened.append(value)) or real(value)
    )
    with transaction.atomic():
        locked = lock_case(case.pk, actor=tree.handler)
        assert type(locked.__dict__["title"]) is crypto.Sealed
        assert opened == []  # nothing decrypted by the lock itself
        assert changed_fields(locked) == [Case._meta.get_field("updated_at")]
        assert locked.title == title  # read: opened once, kept plain
        assert locked.__dict__["title"] == title and len(opened) == 1
        assert locked.title == title and len(opened) == 1
        # read but not changed: not written again; changed: written (encrypted)
        assert changed_fields(locked) == [Case._meta.get_field("updated_at")]
        locked.description = "a new description"
        assert {f.name for f in changed_fields(locked)} == {"description", "updated_at"}
        from casework.locks import save_case

        save_case(locked)
    read = Case.objects.get(pk=case.pk)
    assert (read.title, read.description) == (title, "a new description")


def test_a_sealed_value_compares_and_pickles_as_its_plain_text(tree):
    import pickle

    from casework import crypto

    field = Case._meta.get_field("title")
    token = crypto.encrypt("the title")
    sealed = crypto.Sealed(token, field)
    assert sealed == "the title" and sealed == "the title" and sealed != "another"
    assert sealed == crypto.Sealed(token, field)
    assert pickle.loads(pickle.dumps(sealed)) == "the title"
    assert type(pickle.loads(pickle.dumps(sealed))) is str


def test_instance_maker_makes_what_the_model_makes(tree):
    from django.utils import timezone

    from casework.models import CaseEvent, CaseMessage
    from casework.prepared import instance_maker

    case = case_in(tree, CaseState.COORDINATING)
    values = {
        "case_id": case.pk,
        "seq": 9,
        "kind": "comment",
        "actor_id": tree.handler.pk,
        "at": timezone.now(),
        "prev_hash": "x",
    }
    made, model = instance_maker(CaseEvent)(values), CaseEvent(**values)
    assert _columns(made) == _columns(model)
    assert (made._state.adding, made._state.db) == (True, None)
    message = instance_maker(CaseMessage)(
        {"pk": 77, "kind": "note", "body": "hello"}, {"case": case, "author": tree.handler}
    )
    expected = CaseMessage(pk=77, kind="note", body="hello", case=case, author=tree.handler)
    assert {k: v for k, v in _columns(message).items() if k != "created_at"} == {
        k: v for k, v in _columns(expected).items() if k != "created_at"
    }
    assert message.case is case and message.author is tree.handler  # no query to read them
    heard = []

    def listener(sender, instance, **kwargs):
        heard.append(sender)

    post_init.connect(listener, sender=CaseEvent)
    try:
        instance_maker(CaseEvent)(values)
    finally:
        post_init.disconnect(listener, sender=CaseEvent)
    assert heard == [CaseEvent]  # a listener: made by the model itself
