"""The Jinja2 templates of the busiest staff page: the workbench case page's content.

The case page is read over and over while a case is worked on, and its content
(facts, an action form per action offered, coordination tasks, findings, messages,
the timeline) is a few hundred template variables. Django's template language
resolves each through several lookups and renders each included template through a
fresh context; compiled Jinja2 does the same work several times faster. The page
around the content (``base.html``: header, navigation, language switch) stays in
Django's language, shared with every other page.

Templates live in ``casework/jinja2/``. The globals and filters below are Django's own
functions, so the HTML is the one Django's templates made: ``_`` is ``gettext``
(``{{ _("…") }}`` is what ``makemessages`` extracts from a template), ``url`` is
``reverse``, and ``date`` converts to the current time zone first, as the template
language does before its ``date`` filter.
"""

from __future__ import annotations

import functools

from django.forms.utils import flatatt
from django.template import defaultfilters
from django.template.backends.jinja2 import Jinja2
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext


def url(name: str, *args) -> str:
    return reverse(name, args=args)


def date(value, arg=None) -> str:
    return defaultfilters.date(template_localtime(value), arg)


def visit_moved(count: int) -> str:
    """A visit's "moved n times", as the station templates' ``blocktranslate`` says it."""
    return ngettext("moved %(counter)s time", "moved %(counter)s times", count) % {"counter": count}


def label_tag(field) -> SafeString:
    """``field.label_tag()``'s HTML, without rendering Django's label template per field.

    Django's own logic (the label suffix unless the label ends in punctuation, ``for``
    the widget's id); a form with a ``required_css_class`` gets Django's own method.
    tests/casework/test_staff_case_page_jinja.py compares the two.
    """
    form = field.form
    if hasattr(form, "required_css_class"):
        return field.label_tag()
    contents = field.label
    suffix = field.field.label_suffix
    if suffix is None:
        suffix = form.label_suffix
    if suffix and contents and contents[-1] not in gettext(":?.!"):
        contents = format_html("{}{}", contents, suffix)
    widget = field.field.widget
    id_ = widget.attrs.get("id") or field.auto_id
    if not id_:
        return conditional_escape(contents)
    id_for_label = widget.id_for_label(id_)
    attrs = flatatt({"for": id_for_label}) if id_for_label else ""
    return format_html("<label{}>{}</label>", attrs, contents)


def environment(**options):
    import jinja2

    # Django's templates keep a file's last line break; so do these.
    options["keep_trailing_newline"] = True
    env = jinja2.Environment(**options)
    env.globals.update(_=gettext, url=url, visit_moved=visit_moved, label_tag=label_tag)
    env.filters.update(
        date=date,
        filesizeformat=defaultfilters.filesizeformat,
        linebreaksbr=defaultfilters.linebreaksbr,
        truncatechars=defaultfilters.truncatechars,
    )
    return env


@functools.cache
def engine() -> Jinja2:
    """The templates of ``casework/jinja2/``, autoescaped (Django's Jinja2 backend)."""
    return Jinja2(
        {
            "NAME": "casework-pages",
            "DIRS": [],
            "APP_DIRS": True,
            "OPTIONS": {"environment": "casework.views.jinja.environment"},
        }
    )


def render_to_string(template_name: str, context: dict) -> str:
    """The template's HTML (marked safe: Jinja2 escaped every value it printed)."""
    return engine().get_template(template_name).render(context)
