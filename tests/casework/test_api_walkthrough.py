"""Runs docs/api.md: every curl (and manage.py) command of its shell blocks, in order.

Each command is followed by ``# -> STATUS NAME=path ...``: the expected status and
the values (a small JSON path: ``.a.b``, ``[0]``) kept as shell variables for the
commands after it. The requests go through Django's test client, so the document
cannot drift from the API.
"""

from __future__ import annotations

import json
import re
import shlex
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client

from casework.models import Case
from tests.conftest import member
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PASSWORD = "youthvoice-demo"


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def commands(block: str):
    """(command line, expectation line or "") pairs; continuation lines joined."""
    lines = block.replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line.startswith("# ->") and out:
            out[-1][1] = line[4:].strip()
        elif line and not line.startswith("#"):
            out.append([line, ""])
    return out


def expand(text: str, env: dict) -> str:
    return re.sub(r"\$(\w+)", lambda m: str(env[m.group(1)]), text)


def json_path(data, path: str):
    for part in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        data = data[part[0]] if part[0] else data[int(part[1])]
    return data


def run_curl(args: list[str], env: dict):
    method, url, headers, data, form = "GET", None, {}, [], []
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            pass
        elif arg == "-X":
            i += 1
            method = args[i]
        elif arg == "-H":
            i += 1
            name, _, value = expand(args[i], env).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            i += 1
            data.append(expand(args[i], env))
        elif arg == "--data-urlencode":
            i += 1
            key, _, value = expand(args[i], env).partition("=")
            form.append((key, value))
        else:
            url = expand(arg, env)
        i += 1
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    content_type = extra.pop("HTTP_CONTENT_TYPE", None)
    client = Client()
    if method == "GET":
        return client.get(path, **extra)
    if data and data[0].lstrip().startswith("{"):
        body, content_type = data[0], content_type or "application/json"
    else:
        pairs = [tuple(d.split("=", 1)) for d in data] + form
        body, content_type = urlencode(pairs), "application/x-www-form-urlencoded"
    return client.generic(method, path, body, content_type=content_type, **extra)


def test_the_documented_walkthrough_runs(tree, settings):
    # given the demo's people for the story, in the test tree
    settings.API_THROTTLE_RATES = {scope: "1000/minute" for scope in settings.API_THROTTLE_RATES}
    caches["throttle"].clear()
    UserFactory(username="zhang_wei", region_code="440105")
    member(tree.haizhu, "handler", "liu_laoshi")
    member(tree.station, "verifier", "lin_shegong")
    member(tree.partner, "partner", "haizhu_edu")
    for user in type(tree.youth).objects.filter(
        username__in=["zhang_wei", "liu_laoshi", "lin_shegong", "haizhu_edu"]
    ):
        user.set_password(PASSWORD)
        user.save()

    env: dict[str, object] = {}
    ran = 0
    for block in shell_blocks(DOC.read_text(encoding="utf-8")):
        for line, expectation in commands(block):
            if line.startswith("BASE="):
                env["BASE"] = ""  # the test client needs paths only
                continue
            args = shlex.split(line)
            if args[:2] == ["python", "manage.py"]:
                out = StringIO()
                call_command(*args[2:], stdout=out)
                if expectation:
                    env[expectation] = out.getvalue().strip()
                continue
            assert args[0] == "curl", line
            response = run_curl(args, env)
            ran += 1
            if not expectation:
                continue
            status, *saves = expectation.split()
            assert response.status_code == int(status), (line, response.content[:500])
            body = json.loads(response.content) if saves else None
            for save in saves:
                name, _, path = save.partition("=")
                env[name] = json_path(body, path)

    # then the whole life ran, and the case ended closed and public
    assert ran >= 25
    assert env["STATE"] == "closed" and env["STAGE"] == "closed"
    assert Case.objects.get(reference=env["REF"]).rating.outcome == 4
    assert Case.objects.filter(reference=env["SR"]).exists()
    # the documented hand-off: the repeat gave the same case, and there is one
    assert env["HREF"] == env["HREF2"]
    assert Case.objects.filter(channel="handoff").count() == 1
