"""``{% visit_ratable case user as flag %}``: offer the station-visit rating on the youth's page."""

from django import template

from ..services.intake import visit_ratable as _visit_ratable

register = template.Library()


@register.simple_tag
def visit_ratable(case, user) -> bool:
    return _visit_ratable(case, user)


@register.simple_tag
def may_enter_intake(user) -> bool:
    from ..services.intake import may_enter_intake as allowed

    return allowed(user)
