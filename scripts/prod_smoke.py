"""`make prod-smoke`: the production stack, started from the Procfile and used end to end.

1. Creates a fresh PostgreSQL database of its own (``yv_prod_smoke_<pid>`` on the
   server of DATABASE_URL, or PROD_SMOKE_DATABASE), under production settings.
2. Runs the Procfile's ``release`` step (migrate, collectstatic) and seeds the demo
   organisation tree and accounts (casework.demo, no cases). As an administrator
   would in Admin → Workflows, it makes the default SLA policy's accept stage
   0.01 working hours, and every hour of today and tomorrow working time, so an urgent
   case that nobody accepts breaches in about 9 seconds, whatever the day.
3. Starts every other Procfile process (gunicorn on a free local port, one
   Celery worker per queue, beat) as subprocesses in their own process groups,
   against local Redis (PROD_SMOKE_BROKER_URL, else CELERY_BROKER_URL).
4. Through gunicorn only, with the API and the pages: a youth asks for help
   twice; case 1 is routed, accepted, verified at a station, resolved, given
   feedback and rated; case 2 is left alone until beat's SLA sweep escalates it.
5. Checks the database: states, the escalation event, every due notification
   delivered by the worker, in-app messages, and ``verify_timeline``.
6. Always stops what it started (also on failure and Ctrl-C) and drops its
   database. Exit status 0 when everything held, 1 otherwise; on failure the
   tails of the processes' logs are printed.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))  # run as a script from scripts/: the project's packages
TIME_LIMIT = float(os.environ.get("PROD_SMOKE_TIMEOUT", "240"))
PASSWORD = "prod-smoke-" + secrets.token_urlsafe(9)
STARTED = time.monotonic()
LOG_TAIL_LINES = 40


class SmokeFailure(Exception):
    pass


def say(message: str) -> None:
    print(f"[prod-smoke {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def check(condition, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)
    say(f"ok   {message}")


def remaining() -> float:
    return TIME_LIMIT - (time.monotonic() - STARTED)


def wait_for(what: str, probe, timeout: float, interval: float = 0.5):
    """Call ``probe`` until it returns something true; fail after ``timeout`` seconds."""
    end = time.monotonic() + min(timeout, max(remaining(), 1))
    last_error = None
    while time.monotonic() < end:
        try:
            result = probe()
            if result:
                return result
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise SmokeFailure(f"timed out waiting for {what}{detail}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


# --- the database -------------------------------------------------------------


def database_urls() -> tuple[str, str, str]:
    """(server URL of the maintenance database, smoke database URL, smoke database name)."""
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SmokeFailure(f"DATABASE_URL must be a PostgreSQL URL, not {parts.scheme}://")
    name = os.environ.get("PROD_SMOKE_DATABASE") or f"yv_prod_smoke_{os.getpid()}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SmokeFailure(f"bad database name {name!r}")
    server = urlunsplit(parts._replace(path="/postgres"))
    return server, urlunsplit(parts._replace(path=f"/{name}")), name


def admin_sql(server_url: str, statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


# --- the processes ------------------------------------------------------------


@dataclass
class Process:
    name: str
    command: str
    log: Path
    popen: subprocess.Popen | None = None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class Stack:
    env: dict
    workdir: Path
    processes: list[Process] = field(default_factory=list)

    def run(self, name: str, command: str, timeout: float) -> None:
        """A one-off step (the release), in its own process group, with a time limit."""
        proc = self._spawn(name, command)
        try:
            code = proc.popen.wait(timeout=min(timeout, max(remaining(), 1)))
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"{name} did not finish within {timeout:.0f} s") from None
        if code != 0:
            raise SmokeFailure(f"{name} exited with {code}")

    def start(self, name: str, command: str) -> Process:
        return self._spawn(name, command)

    def _spawn(self, name: str, command: str) -> Process:
        proc = Process(name, command, self.workdir / f"{name}.log")
        say(f"start {name}: {command}")
        with proc.log.open("wb") as log:
            proc.popen = subprocess.Popen(
                ["bash", "-c", command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        self.processes.append(proc)
        return proc

    def assert_alive(self) -> None:
        for proc in self.processes:
            code = proc.popen.poll()
            if code is not None and proc.name != "release":
                raise SmokeFailure(f"{proc.name} exited early with status {code}")

    def stop(self) -> None:
        running = [p for p in self.processes if p.popen and p.popen.poll() is None]
        for proc in running:
            _signal_group(proc.popen, signal.SIGTERM)
        end = time.monotonic() + 15
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(end - time.monotonic(), 0.1))
        for proc in self.processes:
            # Also the group of a process that already ended: its children may linger.
            _signal_group(proc.popen, signal.SIGKILL)
            if proc.popen.poll() is None:
                proc.popen.wait(timeout=5)
        if running:
            say(f"stopped {', '.join(p.name for p in running)}")

    def print_logs(self) -> None:
        for proc in self.processes:
            print(f"\n----- last {LOG_TAIL_LINES} lines of {proc.name} ({proc.log}) -----")
            print(proc.tail(), flush=True)


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


# --- HTTP through gunicorn ----------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Client:
    """One caller: a browser (cookies, CSRF) or an API client (token).

    Requests carry ``X-Forwarded-Proto: https`` as the TLS-terminating proxy in
    front of gunicorn would (SECURE_PROXY_SSL_HEADER_NAME is set for the run).
    """

    def __init__(self, port: int):
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.token: str | None = None

    def request(self, method: str, path: str, *, body=None, form=None, headers=None):
        head = {"X-Forwarded-Proto": "https", "Accept-Language": "en"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            head["Content-Type"] = "application/json"
        elif form is not None:
            payload = urlencode(form).encode()
            head["Content-Type"] = "application/x-www-form-urlencoded"
            head["Origin"] = self.origin
            head["Referer"] = self.origin + path
        if self.token:
            head["Authorization"] = f"Token {self.token}"
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=payload, headers=head)
            raw = conn.getresponse()
            response = Response(raw.status, raw.msg, raw.read())
        finally:
            conn.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return response

    def expect(self, status: int, method: str, path: str, **kw) -> Response:
        response = self.request(method, path, **kw)
        if response.status != status:
            raise SmokeFailure(
                f"{method} {path}: expected {status}, got {response.status}: {response.text[:500]}"
            )
        return response

    def api_login(self, username: str) -> None:
        data = self.expect(
            200, "POST", "/api/auth/token/", body={"username": username, "password": PASSWORD}
        ).json()
        self.token = data["token"]

    def page_login(self, username: str) -> None:
        page = self.expect(200, "GET", "/accounts/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not csrf:
            raise SmokeFailure("the sign-in page has no CSRF token")
        form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf[1]}
        done = self.expect(302, "POST", "/accounts/login/", form=form)
        if "sessionid" not in self.cookies:
            raise SmokeFailure(f"signing in as {username} set no session: {done.headers}")


def act(client: Client, reference: str, action: str, version: int, **data) -> dict:
    return client.expect(
        200, "POST", f"/api/cases/{reference}/{action}/", body={**data, "version": version}
    ).json()


# --- the run ------------------------------------------------------------------


def production_env(database_url: str, broker: str, workdir: Path, port: int) -> dict:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SECURE_PROXY_SSL_HEADER_NAME": "HTTP_X_FORWARDED_PROTO",
            "DATABASE_URL": database_url,
            "DATABASE_CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": broker,
            "CACHE_URL": broker,
            "DJANGO_STATIC_ROOT": str(workdir / "static"),
            "MEDIA_ROOT": str(workdir / "media"),
            "CELERY_BEAT_SCHEDULE_FILE": str(workdir / "celerybeat-schedule"),
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            "CELERY_NOTIFICATIONS_CONCURRENCY": "2",
            "CELERY_SWEEPS_CONCURRENCY": "1",
            "CELERY_DEFAULT_CONCURRENCY": "1",
            # The sweep every 3 s and the relay every 5 s, so the run is short.
            "SLA_SWEEP_INTERVAL_SECONDS": "3",
            "NOTIFICATIONS_RELAY_INTERVAL_SECONDS": "5",
            "NOTIFICATIONS_RELAY_GRACE_SECONDS": "10",
            # One address makes every request of the run: lift the per-IP limits.
            "API_RATE_SUBMIT": "1000/hour",
            "API_RATE_LOGIN": "1000/minute",
        }
    )
    return env


def seed() -> dict:
    """The organisation tree and accounts, a short SLA, a round-the-clock calendar."""
    from django.utils import timezone

    from casework import demo
    from casework.models import Category
    from workflows.models import CalendarDay, SlaPolicy, WorkingHours

    orgs = demo.ensure_tree(log=lambda line: None)
    demo.ensure_people(orgs, PASSWORD, log=lambda line: None)
    policy, _ = SlaPolicy.objects.get_or_create(category=None, urgency="")
    policy.accept_hours = Decimal("0.01")  # 36 s; an urgent case gets a quarter: 9 s
    policy.full_clean()
    policy.save()
    # Working hours round the clock, and today and tomorrow adjusted working days
    # (they win over the weekend rule and replace any holiday), as in the admin.
    hours = WorkingHours.objects.filter(pk=1).first() or WorkingHours(pk=1)
    hours.hours = [["00:00", "23:59:59"]]
    hours.full_clean(validate_unique=False)
    hours.save()
    today = timezone.localdate(timezone=ZoneInfo(hours.time_zone))
    for day in (today, today + timedelta(days=1)):
        CalendarDay.objects.update_or_create(
            date=day, defaults={"kind": CalendarDay.Kind.WORKDAY, "name": "prod-smoke"}
        )
    return {"orgs": len(orgs), "categories": Category.objects.count()}


def scenario(port: int, stack: Stack) -> dict:
    youth, handler, verifier, supervisor = (Client(port) for _ in range(4))
    anonymous = Client(port)

    home = anonymous.request("GET", "/")
    check(home.status in (200, 302), f"home page answers through gunicorn ({home.status})")
    static_file = next(Path(stack.env["DJANGO_STATIC_ROOT"]).rglob("*.css"))
    static_path = "/static/" + static_file.relative_to(stack.env["DJANGO_STATIC_ROOT"]).as_posix()
    served = anonymous.expect(200, "GET", static_path)
    check(served.body == static_file.read_bytes(), f"WhiteNoise serves {static_path}")
    check(
        "max-age=31536000" in served.headers.get("Strict-Transport-Security", ""),
        "HSTS header set under production settings",
    )

    youth.api_login("zhang_wei")
    handler.api_login("liu_laoshi")
    verifier.api_login("lin_shegong")
    supervisor.api_login("zhou_shuji")
    say("ok   four API tokens issued")

    submit = {
        "category": "study",
        "region_code": "440105",
        "title": "学校里被孤立",
        "description": "同学们不和我说话，我不想去上学了",
    }
    case1 = youth.expect(201, "POST", "/api/cases/", body=submit).json()
    ref1 = case1["reference"]
    check(case1["state"] == "submitted", f"youth submitted {ref1} through the API")
    seen = handler.expect(200, "GET", f"/api/cases/{ref1}/").json()
    check(seen["org"]["name"] == "海珠区团委", f"{ref1} routed to {seen['org']['name']}")
    staff_page = Client(port)
    staff_page.page_login("liu_laoshi")
    inbox = staff_page.expect(200, "GET", "/tasks/")
    check(ref1 in inbox.text, f"{ref1} in the handler's task inbox page")
    staff_page.expect(200, "GET", f"/work/cases/{ref1}/")

    version = act(handler, ref1, "accept", seen["version"])["version"]
    stations = handler.expect(
        200, "GET", "/api/organisations/?kind=station&region_code=440105"
    ).json()["results"]
    version = act(handler, ref1, "schedule-verification", version, station=stations[0]["id"])[
        "version"
    ]
    version = act(
        verifier, ref1, "record-verification", version, confirmed=True, findings="情况属实"
    )["version"]
    version = act(handler, ref1, "resolve", version, outcome="solved", note="学校已介入")["version"]
    version = act(handler, ref1, "give-feedback", version, message="学校已经开了班会")["version"]
    say("ok   handler accepted, station verified, handler resolved and gave feedback")
    rated = act(youth, ref1, "rate", version, timeliness=5, attitude=5, outcome=4, solved="solved")
    check(rated["state"] == "closed", f"youth rated {ref1}: state {rated['state']}")
    public = anonymous.expect(200, "GET", f"/p/{case1['public_token']}/")
    check("张伟" not in public.text, "public progress page answers and names nobody")

    # Case 2: urgent, and nobody accepts it: 9 working seconds under the seeded policy.
    case2 = youth.expect(
        201,
        "POST",
        "/api/cases/",
        body={**submit, "title": "宿舍纠纷", "urgency": "urgent", "description": "室友吵架"},
    ).json()
    ref2 = case2["reference"]
    check(case2["state"] == "submitted", f"youth submitted urgent {ref2}; nobody accepts it")
    youth_page = Client(port)
    youth_page.page_login("zhang_wei")
    my = youth_page.expect(200, "GET", "/my/")
    check(ref1 in my.text and ref2 in my.text, "the youth's page lists both cases")

    say(f"waiting for beat's SLA sweep to escalate {ref2} ...")

    def escalated():
        stack.assert_alive()
        data = supervisor.expect(200, "GET", f"/api/cases/{ref2}/").json()
        return data if data["org"]["name"] != "海珠区团委" else None

    moved = wait_for(f"the sweep to escalate {ref2}", escalated, timeout=90, interval=1)
    check(True, f"{ref2} escalated to {moved['org']['name']} by the sweep")
    events = supervisor.expect(200, "GET", f"/api/cases/{ref2}/events/").json()
    events = events.get("results", events) if isinstance(events, dict) else events
    check(any(e["kind"] == "escalated" for e in events), f"{ref2}'s timeline has the escalation")
    return {"ref1": ref1, "ref2": ref2, "youth_page": youth_page}


def check_database(refs: dict, stack: Stack) -> None:
    from django.db import close_old_connections
    from django.utils import timezone

    from casework.models import Case, CaseEvent, Rating
    from notifications.models import InboxItem, Notification, OutboxEvent

    close_old_connections()
    case1 = Case.objects.get(reference=refs["ref1"])
    case2 = Case.objects.get(reference=refs["ref2"])
    check(case1.state == "closed", f"database: {case1.reference} closed")
    check(Rating.objects.filter(case=case1).exists(), "database: the rating is stored")
    breach = CaseEvent.objects.filter(
        case=case2, kind="escalated", payload__reason="sla_breach"
    ).first()
    check(breach is not None and breach.actor_id is None, "database: escalated by the sweep")
    check(case2.escalation_count == 1, f"database: {case2.reference} escalated once")

    cases = [case1, case2]
    busy = ("pending", "sending", "failed")

    def all_delivered():
        stack.assert_alive()
        # Each change wrote one outbox event; the worker fans it out to delivery rows.
        if OutboxEvent.objects.filter(
            case_id__in=[case.pk for case in cases], fanned_out_at__isnull=True
        ).exists():
            return False
        return not Notification.objects.filter(
            case__in=cases, status__in=busy, next_attempt_at__lte=timezone.now()
        ).exists()

    wait_for("the worker to deliver every due notification", all_delivered, 60, 1)
    rows = Notification.objects.filter(case__in=cases)
    by_status = {s: rows.filter(status=s).count() for s in ("sent", "skipped", "dead", *busy)}
    check(rows.filter(status="dead").count() == 0, f"database: notifications {by_status}")
    check(
        Notification.objects.filter(event=breach, channel="inapp", status="sent").exists(),
        "database: the escalation's in-app notifications were delivered by the worker",
    )
    youth_items = InboxItem.objects.filter(user=case1.youth, case__in=cases).count()
    check(youth_items > 0, f"database: {youth_items} in-app messages for the youth")
    latest = InboxItem.objects.filter(user=case1.youth, case=case2).first()
    inbox = refs["youth_page"].expect(200, "GET", "/notifications/")
    check(
        latest is not None and html.escape(latest.subject) in inbox.text,
        "the youth's notifications page shows the worker's message about the escalated case",
    )

    out = subprocess.run(
        [str(BIN / "python"), "manage.py", "verify_timeline"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=max(remaining(), 10),
    )
    check(out.returncode == 0, f"verify_timeline: {out.stdout.strip().splitlines()[-1:]}")


def main() -> int:
    server, database_url, name = database_urls()
    broker = (
        os.environ.get("PROD_SMOKE_BROKER_URL")
        or os.environ.get("CELERY_BROKER_URL")
        or "redis://127.0.0.1:6379/0"
    )
    workdir = Path(tempfile.mkdtemp(prefix="prod-smoke-"))
    port = free_port()
    env = production_env(database_url, broker, workdir, port)
    stack = Stack(env, workdir)
    created = failed = False

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        say(f"database {name}, broker {broker}, web on 127.0.0.1:{port}, logs in {workdir}")
        admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_sql(server, f'CREATE DATABASE "{name}"')
        created = True
        entries = procfile()
        stack.run("release", entries.pop("release"), timeout=120)
        say("ok   release step: migrate and collectstatic")

        os.environ.update(env)  # this process reads and seeds the same database
        import django

        django.setup()
        counts = seed()
        say(f"ok   seeded {counts['orgs']} organisations, the demo accounts, a 9 s urgent SLA")
        from django.db import connections

        connections.close_all()

        for process, command in entries.items():
            stack.start(process, command)
        client = Client(port)
        wait_for(
            "gunicorn to answer",
            lambda: stack.assert_alive() or client.request("GET", "/api/categories/").status == 200,
            timeout=60,
        )
        for process in entries:
            if process != "web":
                log = workdir / f"{process}.log"
                marker = "beat: Starting" if process == "beat" else " ready."
                wait_for(
                    f"{process} to start",
                    lambda log=log, marker=marker: (
                        stack.assert_alive() or marker in log.read_text(errors="replace")
                    ),
                    timeout=60,
                )
        say(f"ok   stack up: {', '.join(entries)}")

        refs = scenario(port, stack)
        check_database(refs, stack)
        return 0
    except (SmokeFailure, KeyboardInterrupt) as exc:
        failed = True
        say(f"FAILED: {exc}")
        return 1
    except Exception as exc:
        failed = True
        say(f"FAILED with an unexpected error: {exc!r}")
        import traceback

        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        if failed:
            stack.print_logs()
        if "django.db" in sys.modules:
            from django.conf import settings

            if settings.configured:
                from django.db import connections

                connections.close_all()
        if created:
            try:
                admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                say(f"dropped database {name}")
            except Exception as exc:
                say(f"could not drop database {name}: {exc}")
        if not failed:
            shutil.rmtree(workdir, ignore_errors=True)
        say(("FAILED" if failed else "PASSED") + f" in {time.monotonic() - STARTED:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
