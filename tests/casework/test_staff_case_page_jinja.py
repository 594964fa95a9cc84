"""The case page's content is rendered by Jinja2 (casework/jinja2/, casework.views.jinja).

Its two shared pieces exist in both languages (the form fields and the deadline badge,
also used by Django templates of other pages): both copies must give the same HTML.
The content must escape what people typed, speak the visitor's language, and carry
one CSRF token in every form.
"""

import re
from datetime import timedelta

import pytest
from django import forms
from django.template.loader import render_to_string as django_render
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from casework import services
from casework.forms_staff import ReferForm, RejectForm
from casework.states import CaseState
from casework.views import jinja
from casework.views.staff import sla_badge
from tests.casework.steps import case_in, submit

pytestmark = pytest.mark.django_db


class EveryKind(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(max_length=5, help_text="<b>help</b> & more")
    pick = forms.ChoiceField(choices=[("a", "A & B")], widget=forms.RadioSelect)
    note = forms.CharField(widget=forms.Textarea, required=False)
    file = forms.FileField(required=False)

    def clean(self):
        raise forms.ValidationError("whole form <wrong>")


@pytest.mark.parametrize("data", [None, {"version": "x", "text": "toolong", "pick": "zz"}])
def test_the_fields_render_the_same_in_both_languages(data):
    form = EveryKind(data, initial={"note": "a < b\nline"}, prefix="p")
    if data:
        assert not form.is_valid()
    ours = jinja.render_to_string("casework/staff/_fields.html", {"form": form})
    django = django_render("casework/staff/_fields.html", {"form": form})
    assert ours == django
    assert "<fieldset>" in ours and "&lt;b&gt;help&lt;/b&gt;" in ours
    if data:
        assert "whole form &lt;wrong&gt;" in ours and 'id="id_p-text_errors"' in ours


def test_the_action_forms_render_the_same_in_both_languages(tree):
    case = case_in(tree, CaseState.COORDINATING)
    for form in (
        ReferForm(case=case, user=tree.handler, prefix="refer"),
        RejectForm({"reject-version": "1"}, case=case, user=tree.handler, prefix="reject"),
    ):
        if form.is_bound:
            form.is_valid()
        ours = jinja.render_to_string("casework/staff/_fields.html", {"form": form})
        assert ours == django_render("casework/staff/_fields.html", {"form": form})


@pytest.mark.parametrize("hours", [None, -30, 3, 80])
def test_the_deadline_badge_renders_the_same_in_both_languages(hours):
    now = timezone.now()
    badge = None if hours is None else sla_badge(now + timedelta(hours=hours), now)
    for language in ("en", "zh-hans"):
        with translation.override(language):
            ours = jinja.render_to_string("casework/staff/_sla_badge.html", {"badge": badge})
            assert ours == django_render("casework/staff/_sla_badge.html", {"badge": badge})


def test_what_people_typed_is_escaped_on_the_page(client, tree):
    case = submit(tree, title="<script>标题</script>", description="第一行 & <i>\n第二行")
    services.case_comment(case=case.pk, actor=tree.handler, body="备注 <img src=x>")
    tree.haizhu.name = "海珠 <区>"
    tree.haizhu.save()
    client.force_login(tree.handler)
    html = client.get(reverse("casework:staff_case", args=[case.reference])).content.decode()
    assert "&lt;script&gt;标题&lt;/script&gt;" in html and "<script>标题" not in html
    assert "第一行 &amp; &lt;i&gt;<br>第二行" in html
    assert "备注 &lt;img src=x&gt;" in html and "<img src=x>" not in html
    assert "海珠 &lt;区&gt;" in html and "海珠 <区>" not in html


def test_the_page_speaks_chinese_by_default_and_every_form_carries_the_token(tree):
    case = submit(tree)
    client = Client()  # no Accept-Language: the site's default
    client.force_login(tree.handler)
    response = client.get(reverse("casework:staff_case", args=[case.reference]))
    html = response.content.decode()
    for words in ("诉求详情", "当前可执行的操作", "协调任务", "办理轨迹"):
        assert words in html, words
    assert "What you can do now" not in html
    forms_on_page = html.count("<form ")
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"', html)
    assert len(tokens) == forms_on_page > 5  # each action, the language switch, log out
    assert len(set(tokens)) == 1
    assert response.cookies["csrftoken"].value


class Labels(forms.Form):
    asked = forms.CharField(label="Why?")
    plain = forms.CharField(label="A <b> & c")
    own = forms.CharField(label="Own", label_suffix=" →")
    none = forms.CharField(label="")
    given = forms.CharField(label="Given id", widget=forms.TextInput(attrs={"id": "mine"}))
    radio = forms.ChoiceField(choices=[("a", "A")], widget=forms.RadioSelect)


class RequiredClass(Labels):
    required_css_class = "needed"


@pytest.mark.parametrize("kwargs", [{}, {"auto_id": False}, {"label_suffix": ""}, {"prefix": "p"}])
def test_the_label_is_djangos_label_tag(kwargs, tree):
    case = case_in(tree, CaseState.COORDINATING)
    staff_forms = [
        form_class(case=case, user=tree.handler, prefix=name)
        for name, form_class in (("refer", ReferForm), ("reject", RejectForm))
    ]
    for form in [Labels(**kwargs), RequiredClass(**kwargs), *staff_forms]:
        for language in ("en", "zh-hans"):
            with translation.override(language):
                for field in form:
                    assert str(jinja.label_tag(field)) == str(field.label_tag()), field.name
