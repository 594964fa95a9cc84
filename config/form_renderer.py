"""The form renderer: Django's own Jinja2 widget templates, its Django templates after.

Every page with forms renders each field through a widget template (an ``<input>``
is three nested templates, a ``<select>`` one more per option). Django ships each
of those templates twice, for its template language and for Jinja2, producing the
same HTML; compiled Jinja2 renders them several times faster, which is most of what
the case page spends on its action forms. A template only Django's template language
has (the admin's widget wrappers, a library's own widget) is rendered by it as before.
"""

from __future__ import annotations

from django.forms.renderers import BaseRenderer, DjangoTemplates, Jinja2
from django.template import TemplateDoesNotExist


class FormRenderer(BaseRenderer):
    """Jinja2 for the templates Django ships in both languages, Django's otherwise."""

    def __init__(self):
        self.jinja2 = Jinja2()
        self.django = DjangoTemplates()

    def get_template(self, template_name):
        try:
            return self.jinja2.get_template(template_name)
        except TemplateDoesNotExist:
            return self.django.get_template(template_name)
