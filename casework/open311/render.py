"""Open311 documents as JSON or XML, in the shapes GeoReport v2 clients parse.

XML follows the specification's element names: a list is a root element
(``services``, ``service_requests``, ``errors``...) holding one element per item
(``service``, ``request``, ``error``...); nested lists likewise (``attributes`` >
``attribute``, ``values`` > ``value``, ``endpoints`` > ``endpoint``, ``formats`` >
``format``). Booleans are ``true``/``false``; missing values are empty elements.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from django.http import HttpResponse

# Child element name of each list, by the list's name.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "keywords": "keyword",
}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _fill(ET.SubElement(element, key), sub)
    elif isinstance(value, list):
        item_name = ITEM_NAMES.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, item_name), item)
    else:
        element.text = _text(value)


def to_xml(root: str, value) -> bytes:
    element = ET.Element(root)
    _fill(element, value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(element, encoding="utf-8")


def respond(fmt: str, root: str, value, *, status: int = 200) -> HttpResponse:
    """``value`` as ``fmt`` ("json" or "xml"); ``root`` names the XML document element."""
    if fmt == "xml":
        return HttpResponse(
            to_xml(root, value), content_type="text/xml; charset=utf-8", status=status
        )
    return HttpResponse(
        json.dumps(value, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
        status=status,
    )


def error(fmt: str, status: int, description: str, *, headers: dict | None = None) -> HttpResponse:
    """The specification's error list: ``[{"code": 400, "description": "..."}]``."""
    response = respond(
        fmt, "errors", [{"code": status, "description": str(description)}], status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response
