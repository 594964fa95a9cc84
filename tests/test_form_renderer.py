"""The form renderer: Django's Jinja2 widget templates first, its Django templates after."""

import re

import pytest
from django import forms
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.template.backends.django import Template as DjangoTemplate
from django.template.backends.jinja2 import Template as Jinja2Template
from django.urls import reverse

from casework.states import CaseState
from config.form_renderer import FormRenderer
from tests.casework.steps import case_in


class EveryWidget(forms.Form):
    text = forms.CharField(max_length=20, help_text="h")
    note = forms.CharField(widget=forms.Textarea)
    pick = forms.ChoiceField(choices=[("a", "A & B"), ("b", "<b>")])
    many = forms.MultipleChoiceField(choices=[("x", "X"), ("y", "Y")], required=False)
    ticks = forms.MultipleChoiceField(
        choices=[("x", "X"), ("y", "Y")], widget=forms.CheckboxSelectMultiple, required=False
    )
    radio = forms.ChoiceField(choices=[("1", "one"), ("2", "two")], widget=forms.RadioSelect)
    flag = forms.BooleanField(required=False)
    when = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    file = forms.FileField(required=False)
    number = forms.IntegerField(min_value=1)
    hidden = forms.CharField(widget=forms.HiddenInput)


def normalised(html: str) -> str:
    """The HTML as a browser reads it: the two template sets differ only in whitespace
    between tags (blank lines after each option, a line break inside a radio label)."""
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", str(html)))


def textareas(html: str) -> list[str]:
    """Each text area with its content exactly: whitespace there is part of the value."""
    return re.findall(r"<textarea.*?</textarea>", str(html), flags=re.S)


def test_the_settings_name_this_renderer():
    assert isinstance(get_default_renderer(), FormRenderer)


def test_widgets_render_through_jinja2_and_django_only_templates_still_work():
    renderer = FormRenderer()
    assert isinstance(renderer.get_template("django/forms/widgets/select.html"), Jinja2Template)
    # The admin's widget wrapper exists only as a Django template.
    template = renderer.get_template(RelatedFieldWidgetWrapper.template_name)
    assert isinstance(template, DjangoTemplate)


@pytest.mark.parametrize("data", [None, {"text": "x" * 30, "pick": "zz", "number": "0"}])
def test_every_widget_renders_the_same_html_as_django_templates(data):
    ours = EveryWidget(data, initial={"note": "a < b", "flag": True}, renderer=FormRenderer())
    django = EveryWidget(data, initial={"note": "a < b", "flag": True}, renderer=DjangoTemplates())
    assert normalised(ours.as_div()) == normalised(django.as_div())
    assert textareas(ours.as_div()) == textareas(django.as_div()) != []
    assert "&lt;b&gt;" in str(ours.as_div())  # choice labels are escaped
    if data:
        assert ours.errors and str(ours["text"].errors) == str(django["text"].errors)


def test_the_case_page_is_the_same_with_either_renderer(client, settings, tree):
    case = case_in(tree, CaseState.COORDINATING)
    client.force_login(tree.handler)
    url = reverse("casework:staff_case", args=[case.reference])
    pages = []
    for renderer in ("django.forms.renderers.DjangoTemplates", "config.form_renderer.FormRenderer"):
        settings.FORM_RENDERER = renderer
        get_default_renderer.cache_clear()
        response = client.get(url)
        assert response.status_code == 200
        html = re.sub(r'value="[A-Za-z0-9]{64}"', "", response.content.decode())  # CSRF
        pages.append(re.sub(r'nonce="[^"]+"', "", html))
    get_default_renderer.cache_clear()
    assert "<select" in pages[1] and "<textarea" in pages[1]
    assert normalised(pages[0]) == normalised(pages[1])
    assert textareas(pages[0]) == textareas(pages[1])
