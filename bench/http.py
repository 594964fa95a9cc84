"""`python -m bench http`: the API under an open-loop offered load, served by gunicorn.

Against a database built by ``manage.py generate_load_data`` (``--database-url``
or BENCH_DATABASE_URL). The benchmark starts gunicorn (production settings:
DEBUG off, the real middleware, Redis cache for the rate limits) on a local
port, then offers requests on a fixed schedule — open loop: request i is sent
at start + i / rate whatever happened to the earlier ones, and its latency is
counted from that scheduled moment, so a slow server cannot slow the offered
load down and hide its own queueing. Connections are reused as a load balancer
reuses its upstream connections (nginx ``keepalive``): a request takes an idle
kept-alive connection or opens a new one, never waits for one (``Pool``);
``--keepalive 0``: a new connection per request, closed after it (as before
session 4).

The mix (per 20 requests): 8 inbox lists (GET /api/cases/ as the handler of a
busy organisation), 6 case reads (GET /api/cases/<ref>/), 2 actions (POST
/api/cases/<ref>/accept/ with If-Match, on submitted cases of that
organisation: each is accepted once, for real) and 4 public lookups (GET
/api/public/cases/<token>/, anonymous).

gunicorn runs as the Procfile's ``web`` does (``-c config/gunicorn.py``; ``--workers``,
``--threads`` and ``--worker-class`` override it), its access log in
var/bench-http-access.log. Each line also gives the CPU per request the server answered
of gunicorn (``web_cpu_ms_per_request``), of the database's backends
(``db_cpu_ms_per_request``) and of this client: figures that depend little on what
else the machine runs, unlike the latencies.

Lines: ``http`` at ``--rate`` (p50/p95/p99 ms, errors), and with ``--search``
one ``http_step`` per offered rate (``--rate``, then +``--step`` …) until p95
passes 100 ms, then ``http_max_rate``: the highest offered rate whose p95 stayed
under 100 ms. The API's per-user and per-IP rate limits are raised for the run
(every request comes from one IP and a few users); FIELD_ENCRYPTION_KEYS gets a
fresh key in front of the development key the loaded data was encrypted with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ._common import emit, peak_rss_mb, progress
from .read import DEFAULT_URL, percentile

ROOT = Path(__file__).resolve().parent.parent
# Idle keep-alive connections of the client (``--keepalive``): what four workers of
# config/gunicorn.py keep alive (4 x (8 connections - 4 threads)).
KEEPALIVE = 16
MIX = ["inbox"] * 8 + ["case"] * 6 + ["act"] * 2 + ["public"] * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the work to offer --------------------------------------------------------------


def prepare(url: str, handlers: int, acts_needed: int) -> dict:
    """Tokens, case references, submitted cases to accept and public tokens, from the DB."""
    from .read import setup_django

    setup_django(url)
    from django.db.models import Count
    from rest_framework.authtoken.models import Token

    from casework.models import Case, Membership

    busy = list(
        Case.objects.filter(state="submitted", org__level__gte=3)
        .values("org_id")
        .annotate(n=Count("pk"))
        .order_by("-n")[:handlers]
    )
    people = []
    per_handler = max(1, acts_needed // max(1, len(busy)) + 1)
    for row in busy:
        member = (
            Membership.objects.filter(organisation_id=row["org_id"], role="handler")
            .select_related("user")
            .first()
        )
        if member is None:
            continue
        token, _ = Token.objects.get_or_create(user=member.user)
        submitted = list(
            Case.objects.filter(org_id=row["org_id"], state="submitted")
            .order_by("pk")
            .values_list("reference", "version")[:per_handler]
        )
        others = list(
            Case.objects.filter(org_id=row["org_id"])
            .exclude(state="submitted")
            .order_by("-pk")
            .values_list("reference", flat=True)[:200]
        )
        people.append({"token": token.key, "submitted": submitted, "others": others})
    public = list(
        Case.objects.filter(is_public=True, hidden_from_public=False)
        .order_by("?")
        .values_list("public_token", flat=True)[:2000]
    )
    from django.db import connections

    connections.close_all()
    return {"people": people, "public": public}


class Offer:
    """Builds request i of the mix (deterministic order, independent of responses)."""

    def __init__(self, work: dict, seed: int = 7):
        self.people = work["people"]
        self.public = work["public"]
        self.rnd = random.Random(seed)
        self.act_cursor = [0] * len(self.people)

    def next(self) -> tuple[str, str, str, dict, bytes]:
        kind = self.rnd.choice(MIX)
        p = self.rnd.randrange(len(self.people))
        person = self.people[p]
        auth = {"Authorization": f"Token {person['token']}"}
        if kind == "inbox":
            return kind, "GET", "/api/cases/?state=submitted", auth, b""
        if kind == "case":
            return kind, "GET", f"/api/cases/{self.rnd.choice(person['others'])}/", auth, b""
        if kind == "act":
            k = self.act_cursor[p]
            if k < len(person["submitted"]):
                self.act_cursor[p] = k + 1
                reference, version = person["submitted"][k]
                headers = {**auth, "If-Match": f'"{version}"', "Content-Type": "application/json"}
                return kind, "POST", f"/api/cases/{reference}/accept/", headers, b"{}"
            kind = "case"  # nothing left to accept for this one: read instead
            return kind, "GET", f"/api/cases/{self.rnd.choice(person['others'])}/", auth, b""
        token = self.rnd.choice(self.public)
        return "public", "GET", f"/api/public/cases/{token}/", {}, b""


# --- the open-loop client -----------------------------------------------------------


class Pool:
    """Idle connections to the server, kept open between requests as a load balancer's
    upstream keep-alive pool does (nginx ``keepalive``): a request takes an idle
    connection if there is one and opens a new one otherwise — never waits for one, so
    the load stays open-loop — and gives it back after a complete response unless the
    server said ``Connection: close``. At most ``idle`` connections are kept; with
    ``idle`` 0 every request opens its own connection and asks the server to close it.
    """

    # Idle longer than this, a connection is closed rather than reused: under the
    # server's keep-alive timeout (config/gunicorn.py, 5 s), which closes it otherwise.
    MAX_IDLE_SECONDS = 4.0

    def __init__(self, port: int, idle: int):
        self.port = port
        self.idle = idle
        self.free: list = []  # (reader, writer, idle since), the most recent last
        self.opened = 0
        # With keep-alive, at most ``idle`` connections at all, busy or not: beyond what
        # the server keeps alive, new connections would wait in its accept queue behind
        # the kept ones (a load balancer's per-server connection limit, e.g. HAProxy
        # ``maxconn``); a request waits here, first come first served, for a free one.
        self.slots = asyncio.Semaphore(idle) if idle > 0 else None

    async def take(self, fresh: bool = False):
        """(a connection, whether it was reused)."""
        now = time.monotonic()
        while self.free and not fresh:
            reader, writer, since = self.free.pop()
            if now - since < self.MAX_IDLE_SECONDS:
                return (reader, writer), True
            writer.close()
        self.opened += 1
        return await asyncio.open_connection("127.0.0.1", self.port), False

    def give_back(self, conn) -> None:
        if len(self.free) < self.idle:
            self.free.append((*conn, time.monotonic()))
        else:
            conn[1].close()

    def close(self) -> None:
        for _reader, writer, _since in self.free:
            writer.close()
        self.free.clear()


async def _read_response(reader) -> tuple[int, bool]:
    """Status and whether the connection may be reused; the whole response is read."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed before a response")
    status = int(status_line.split()[1])
    length, chunked, close = None, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and "close" in value:
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # to EOF
        close = True
    return status, not close


async def one_request(pool: Pool, method, path, headers, body, timeout) -> tuple[int, float]:
    keep = pool.idle > 0
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines.append("Connection: keep-alive" if keep else "Connection: close")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def go():
        if pool.slots is None:
            return await send()
        async with pool.slots:
            return await send()

    async def send():
        for attempt in (1, 2):
            conn, reused = await pool.take(fresh=attempt > 1)
            reader, writer = conn
            try:
                writer.write(raw)
                await writer.drain()
                status, reusable = await _read_response(reader)
            except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
                writer.close()
                if reused and attempt == 1:
                    # The server closed an idle connection (its keep-alive timeout) before
                    # reading this request: send it again on a new one, as nginx does.
                    continue
                raise
            except BaseException:
                writer.close()
                raise
            if keep and reusable:
                pool.give_back(conn)
            else:
                writer.close()
            return status
        raise ConnectionResetError("unreachable")  # pragma: no cover

    return await asyncio.wait_for(go(), timeout)


async def offer_load(
    port: int, offer: Offer, rate: float, duration: float, timeout: float, keepalive: int = 0
):
    """Send ``rate`` requests a second for ``duration`` seconds on schedule; collect results."""
    # (kind, status or 0, latency ms, send lag ms: how late the client itself sent it)
    results: list[tuple[str, int, float, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    total = int(rate * duration)
    pending = set()
    failures: dict[str, int] = {}
    pool = Pool(port, keepalive)

    async def fire(scheduled: float, kind, method, path, headers, body):
        lag = (loop.time() - scheduled) * 1000
        try:
            status = await one_request(pool, method, path, headers, body, timeout)
        except (TimeoutError, OSError, IndexError, ValueError, asyncio.IncompleteReadError) as exc:
            status = 0
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
        results.append((kind, status, (loop.time() - scheduled) * 1000, lag))

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(scheduled, *offer.next()))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    pool.close()
    sent_seconds = total / rate
    if failures:
        progress(f"  failed without a response: {failures}")
    progress(f"  connections opened: {pool.opened} for {total} requests")
    return results, sent_seconds


def summarise(results, rate, duration) -> dict:
    latencies = [ms for _kind, _status, ms, _lag in results]
    lags = [lag for _kind, _status, _ms, lag in results]
    errors = [(kind, status) for kind, status, _ms, _lag in results if not 200 <= status < 300]
    by_kind = {}
    for kind in ("inbox", "case", "act", "public"):
        mine = [ms for k, _s, ms, _lag in results if k == kind]
        if mine:
            by_kind[kind] = {"n": len(mine), "p95_ms": round(percentile(mine, 95), 1)}
    statuses = {}
    for _kind, status in errors:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "offered_rps": rate,
        "seconds": duration,
        "requests": len(results),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "errors": len(errors),
        # The client's own honesty: how late it sent requests against the schedule (its
        # event loop busy); latencies count from the schedule either way.
        "send_lag_p99_ms": round(percentile(lags, 99), 1),
        "send_lag_max_ms": round(max(lags), 1) if lags else None,
        "error_statuses": statuses,
        "by_kind": by_kind,
    }


# --- the server -------------------------------------------------------------------------


def server_env(url: str) -> dict:
    from config.settings.privacy import DEV_FIELD_ENCRYPTION_KEY

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench._http_settings",
        DATABASE_URL=url,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        FIELD_ENCRYPTION_KEYS=__import__("cryptography.fernet")
        .fernet.Fernet.generate_key()
        .decode(),
        BENCH_LOADED_DATA_KEY=DEV_FIELD_ENCRYPTION_KEY,
        SECURE_SSL_REDIRECT="false",  # plain HTTP on localhost: TLS ends at the proxy
        CACHE_URL=env.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/5"),
        CELERY_BROKER_URL=env.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5"),
        API_RATE_API="100000000/hour",
        API_RATE_PUBLIC_TOKEN="100000000/minute",
        LOG_LEVEL="WARNING",
    )
    return env


def start_server(
    url: str, port: int, workers: int | None, threads: int | None, worker_class: str | None
) -> subprocess.Popen:
    """gunicorn as the Procfile's ``web`` runs it (config/gunicorn.py), on a local port.

    Workers, threads and worker class are the production defaults unless given. The
    access log (stdout in production) goes to var/bench-http-access.log.
    """
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "config.wsgi:application", "-c", "config/gunicorn.py"]
    env = server_env(url)
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    env["GUNICORN_LOG_LEVEL"] = "warning"
    for name, value in (
        ("WEB_CONCURRENCY", workers),
        ("GUNICORN_THREADS", threads),
        ("GUNICORN_WORKER_CLASS", worker_class),
    ):
        if value:
            env[name] = str(value)
    ACCESS_LOG.parent.mkdir(exist_ok=True)
    log = open(ACCESS_LOG, "ab")  # noqa: SIM115 (the server's)
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, start_new_session=True)
    log.close()
    # Ready when a worker answers (the master listens long before its workers have booted).
    import http.client

    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited at start")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/public/cases/ready-check/")
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise SystemExit("gunicorn did not answer within 180 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def server_rss_mb(server: subprocess.Popen) -> float:
    """Resident memory now of the gunicorn master and its workers, the largest one (MiB)."""
    out = subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(server.pid), "-p", str(server.pid)],
        capture_output=True,
        text=True,
    ).stdout.split()
    return round(max((int(x) for x in out), default=0) / 1024, 1)


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU of each live process so far (from /proc), in seconds."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


ACCESS_LOG = ROOT / "var" / "bench-http-access.log"


def _served() -> int:
    """Lines in gunicorn's access log so far: requests it answered."""
    try:
        with open(ACCESS_LOG, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


class CpuMeter:
    """CPU spent by gunicorn (master and workers) and by the database's backends.

    A load-insensitive figure beside the latencies: milliseconds of CPU per request
    on each side. Backends are counted while they live (persistent connections);
    a process that exits during a run takes its CPU with it, so the figure is a floor.
    """

    def __init__(self, server: subprocess.Popen, url: str):
        import psycopg2

        self.server = server
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def _pids(self):
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.server.pid)], capture_output=True, text=True
        ).stdout.split()
        web = [self.server.pid, *map(int, out)]
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            db = [row[0] for row in cursor.fetchall()]
        return web, db

    def snapshot(self):
        web, db = self._pids()
        return _cpu_seconds(web), _cpu_seconds(db), _served()

    @staticmethod
    def per_request(before, after, requests: int) -> dict:
        """CPU per request the server answered (its access log), which under overload is
        fewer than were sent: a request given up by the client may still be served later."""

        def spent(b, a):
            return sum(v - b.get(pid, 0.0) for pid, v in a.items())

        served = after[2] - before[2]
        n = max(1, served if served > 0 else requests)
        return {
            "served": served,
            "web_cpu_ms_per_request": round(1000 * spent(before[0], after[0]) / n, 2),
            "db_cpu_ms_per_request": round(1000 * spent(before[1], after[1]) / n, 2),
        }

    def close(self):
        self.conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench http", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--rate", type=float, default=100, help="offered requests/s (100)")
    parser.add_argument("--duration", type=float, default=60, help="seconds per run (60)")
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (default: config/gunicorn.py's)"
    )
    parser.add_argument("--threads", type=int, help="threads per gthread worker (default: same)")
    parser.add_argument(
        "--worker-class", help="gunicorn worker class (default: config/gunicorn.py's, sync)"
    )
    parser.add_argument("--timeout", type=float, default=10, help="per request, seconds")
    parser.add_argument(
        "--keepalive",
        type=int,
        default=KEEPALIVE,
        help=f"idle connections the client keeps open for reuse, as a load balancer's "
        f"upstream pool ({KEEPALIVE}); 0: a new connection per request, closed after it",
    )
    parser.add_argument(
        "--search", action="store_true", help="then step the rate up until p95 > 100 ms"
    )
    parser.add_argument("--step", type=float, default=25, help="rate step of --search (25)")
    parser.add_argument("--step-duration", type=float, default=20, help="seconds per step (20)")
    parser.add_argument("--max-rate", type=float, default=400, help="stop --search here")
    args = parser.parse_args(argv)

    steps = []
    if args.search:
        r = args.rate + args.step
        while r <= args.max_rate:
            steps.append(r)
            r += args.step
    acts = int(args.rate * args.duration / 10 + sum(s * args.step_duration / 10 for s in steps))
    progress("choosing users, cases and tokens")
    work = prepare(args.database_url, handlers=40, acts_needed=acts + 100)
    port = free_port()
    progress(f"starting gunicorn (config/gunicorn.py) on port {port}")
    server = start_server(args.database_url, port, args.workers, args.threads, args.worker_class)
    offer = Offer(work)
    meter = CpuMeter(server, args.database_url)
    load = [round(x, 2) for x in os.getloadavg()]
    try:
        # Warm-up: every worker imports, connects and caches what it caches.
        asyncio.run(offer_load(port, offer, 10, 5, 30, args.keepalive))
        progress(f"offering {args.rate:g} requests/s for {args.duration:g} s")
        results, seconds, cpu = measured(
            meter, port, offer, args.rate, args.duration, args.timeout, args.keepalive
        )
        main_line = summarise(results, args.rate, seconds)
        emit(
            bench="http",
            **main_line,
            **cpu,
            workers=args.workers,
            threads=args.threads,
            worker_class=args.worker_class or "default",
            keepalive=args.keepalive,
            server_rss_mb=server_rss_mb(server),
            load_average=load,
            peak_rss_mb=peak_rss_mb(),
        )
        best = args.rate if main_line["p95_ms"] <= 100 and not main_line["errors"] else None
        for rate in steps:
            load = [round(x, 2) for x in os.getloadavg()]
            results, seconds, cpu = measured(
                meter, port, offer, rate, args.step_duration, args.timeout, args.keepalive
            )
            line = summarise(results, rate, seconds)
            emit(
                bench="http_step",
                **line,
                **cpu,
                load_average=load,
                server_rss_mb=server_rss_mb(server),
            )
            if line["p95_ms"] > 100 or line["errors"]:
                break
            best = rate
        if args.search:
            emit(bench="http_max_rate", max_rate_p95_under_100ms=best, step=args.step)
    finally:
        meter.close()
        stop_server(server)
    return 0


def measured(meter: CpuMeter, port, offer, rate, duration, timeout, keepalive):
    """One open-loop run, with the CPU it cost the server, the database and this client."""
    before = meter.snapshot()
    client = time.process_time()
    results, seconds = asyncio.run(offer_load(port, offer, rate, duration, timeout, keepalive))
    client = time.process_time() - client
    cpu = meter.per_request(before, meter.snapshot(), len(results))
    cpu["client_cpu_ms_per_request"] = round(1000 * client / max(1, len(results)), 2)
    return results, seconds, cpu
