"""Render a notification in its recipient's language from non-personal facts.

Templates live in ``templates/notifications/messages/<language>/<event>.txt``
(zh-hans and en); the first line is the subject, the rest the body. They see
only the row's stored context (case reference, category, stage, organisation,
deadline) and, for a partner body, its own task's deadline. The task's instructions
may name the youth, so they are read on the task page (access-checked and
logged), never sent out in a message.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone, translation

from .channels.base import RenderedMessage

LANGUAGES = ("zh-hans", "en")

STATE_LABELS = {
    "zh-hans": {
        "submitted": "已接收",
        "accepted": "已受理",
        "verifying": "线下核实中",
        "coordinating": "协调解决中",
        "awaiting_youth": "等待补充信息",
        "resolved": "已办结",
        "feedback_given": "已反馈结果",
        "closed": "已关闭",
        "rejected": "未受理",
        "withdrawn": "已撤回",
    },
    "en": {
        "submitted": "received",
        "accepted": "accepted",
        "verifying": "being verified in person",
        "coordinating": "being coordinated",
        "awaiting_youth": "waiting for your information",
        "resolved": "resolved",
        "feedback_given": "feedback given",
        "closed": "closed",
        "rejected": "not accepted",
        "withdrawn": "withdrawn",
    },
}

REASON_LABELS = {
    "zh-hans": {
        "sla_breach": "办理超时",
        "beyond_capacity": "超出承办能力",
        "manual": "人工上报",
        "reopened": "青年再次提出异议",
        "appeal": "青年申诉",
    },
    "en": {
        "sla_breach": "the deadline passed",
        "beyond_capacity": "beyond the organisation's capacity",
        "manual": "raised by the handler",
        "reopened": "reopened by the youth",
        "appeal": "appealed by the youth",
    },
}

_categories: dict[str, tuple[str, str]] = {}


def category_name(code: str, language: str) -> str:
    if code and code not in _categories:
        from casework.models import Category

        _categories.update(
            {c: (n, e) for c, n, e in Category.objects.values_list("code", "name", "name_en")}
        )
    name, name_en = _categories.get(code, (code, code))
    return (name_en or name) if language == "en" else name


def preference_of(user):
    """The person's preference row, or None (the platform defaults apply)."""
    try:
        return user.notification_preference
    except ObjectDoesNotExist:
        return None


def language_of(user) -> str:
    pref = preference_of(user)
    language = pref.language if pref else settings.LANGUAGE_CODE
    return language if language in LANGUAGES else LANGUAGES[0]


def _when(value: str | None, language: str) -> str:
    if not value:
        return ""
    try:
        moment = timezone.localtime(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%d %H:%M")


def message_context(notification, language: str, task=None) -> dict:
    ctx = dict(notification.context or {})
    facts = {
        "audience": notification.audience,
        "ref": ctx.get("ref", ""),
        "category": category_name(ctx.get("category", ""), language),
        "state": STATE_LABELS[language].get(ctx.get("state", ""), ctx.get("state", "")),
        "org": (ctx.get("org_en") or ctx.get("org", ""))
        if language == "en"
        else ctx.get("org", ""),
        "due": _when(ctx.get("due"), language),
        "visit": _when(ctx.get("visit"), language),
        "reason": REASON_LABELS[language].get(ctx.get("reason", ""), ""),
    }
    if notification.kind == "claim_code" and ctx.get("code"):
        # The one secret a message carries: stored encrypted, read only to send it.
        from casework.crypto import decrypt

        facts["code"] = decrypt(ctx["code"])
    if notification.audience == "partner":
        # A partner body learns the reference, the category and its own task's deadline;
        # the instructions stay on the platform (docs/privacy.md).
        facts = {k: facts[k] for k in ("audience", "ref", "category")}
        facts["task_due"] = (
            timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M")
            if task is not None and task.due_at
            else ""
        )
    return facts


@lru_cache(maxsize=256)
def _template(language: str, kind: str):
    # Parsed once per process: a worker renders thousands of these.
    try:
        return get_template(f"notifications/messages/{language}/{kind}.txt")
    except TemplateDoesNotExist:
        return get_template(f"notifications/messages/{language}/_default.txt")


def render(notification, language: str, task=None) -> RenderedMessage:
    """The subject and body of ``notification`` in ``language``."""
    template = _template(language, notification.kind)
    with translation.override(language):
        text = template.template.render(
            Context(message_context(notification, language, task), autoescape=False)
        )
    subject, _sep, body = text.strip().partition("\n")
    return RenderedMessage(subject=subject.strip(), body=body.strip(), language=language)
