"""Both catalogues are compiled and complete; pages speak Chinese by default, English on request."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

LOCALE = Path(settings.BASE_DIR) / "locale"


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_catalogues_are_compiled(lang):
    mo = LOCALE / lang / "LC_MESSAGES" / "django.mo"
    po = LOCALE / lang / "LC_MESSAGES" / "django.po"
    assert mo.exists() and po.exists()
    assert mo.stat().st_size > 1000


def test_the_chinese_catalogue_translates_every_message():
    untranslated, msgid, msgstr, fuzzy = [], None, [], False
    text = (LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    # A small reader of the PO format: every non-header msgid needs a non-empty msgstr.
    for block in text.split("\n\n")[1:]:
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid") for line in lines):
            continue
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        msgid = "".join(part.split('"', 1)[1].rsplit('"', 1)[0] for part in _field(lines, "msgid "))
        msgstr = "".join(
            part.split('"', 1)[1].rsplit('"', 1)[0] for part in _field(lines, "msgstr")
        )
        if msgid and (not msgstr or fuzzy):
            untranslated.append(msgid)
    assert untranslated == []


def _field(lines, prefix):
    out, inside = [], False
    for line in lines:
        if line.startswith(prefix):
            inside = True
            out.append(line)
        elif inside and line.startswith('"'):
            out.append(line)
        elif inside:
            inside = False
            if prefix == "msgid ":
                break
    return out


def test_domain_words_in_chinese():
    with translation.override("zh-hans"):
        assert translation.gettext("Youth Voice") == "青年之声"
        assert translation.gettext("Online intake") == "线上接收诉求"
        assert translation.gettext("Offline verification") == "线下核实分析"
        assert translation.gettext("escalated") == "已升级上报"
    with translation.override("en"):
        assert translation.gettext("Online intake") == "Online intake"


def test_pages_are_chinese_by_default():
    # a browser that states no language (the shared client fixture asks for English)
    response = Client().get(reverse("casework:public_stats"))
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert "青年之声" in page and "诉求办理情况" in page
    assert "How requests are handled" not in page


def test_the_language_switch_shows_english():
    client = Client()
    assert "诉求办理情况" in client.get(reverse("casework:public_stats")).content.decode()
    # when the visitor picks English in the header's switch
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("casework:public_stats")}
    )
    assert response.status_code == 302
    # then the next pages are in English
    page = client.get(reverse("casework:public_stats")).content.decode()
    assert '<html lang="en">' in page
    assert "How requests are handled" in page and "诉求办理情况" not in page
    # and switching back gives Chinese again
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert "诉求办理情况" in client.get(reverse("casework:public_stats")).content.decode()


def test_the_browser_language_is_honoured():
    page = Client().get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Log in" in page and "登录" not in page


def test_youth_pages_in_english(tree):
    client = Client()
    client.force_login(tree.youth)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("casework:youth_new")).content.decode()
    assert "Ask for help" in page and "Send my request" in page
