"""Real processes for the delivery tests: Celery workers, a broker, HTTP receivers.

A worker is ``celery -A config worker -B`` in its own process group, against
the test database and a queue name of its own (so parallel runs sharing a
broker never take each other's messages). It can be stopped, or killed with
SIGKILL, process group and all, like a machine losing power.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlparse

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout=30.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    default = {"redis": 6379, "amqp": 5672}.get(parsed.scheme, 0)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default), 2):
            return True
    except OSError:
        return False


def database_url_of_tests() -> str:
    s = connection.settings_dict
    user = quote(s.get("USER") or "")
    password = f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class Worker:
    """One Celery worker (with embedded beat running the relay) as a real process group."""

    def __init__(self, *, broker_url: str, queue: str, tmp: Path, env: dict | None = None):
        self.broker_url = broker_url
        self.queue = queue
        self.tmp = tmp
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.tmp / f"worker-{self.starts}.log"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=database_url_of_tests(),
            CELERY_BROKER_URL=self.broker_url,
            NOTIFICATIONS_QUEUE=self.queue,
            CELERY_SWEEPS_QUEUE=f"{self.queue}-sweeps",
            NOTIFICATIONS_RELAY_INTERVAL_SECONDS="0.5",
            NOTIFICATIONS_RELAY_GRACE_SECONDS="1",
            NOTIFICATIONS_BACKOFF_BASE_SECONDS="0.2",
            NOTIFICATIONS_BACKOFF_MAX_SECONDS="1",
            NOTIFICATIONS_LEASE_SECONDS="3",
            NOTIFICATIONS_HTTP_TIMEOUT_SECONDS="2",
            NOTIFICATIONS_MAX_ATTEMPTS="3",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, concurrency: int = 1) -> Worker:
        self.starts += 1
        log = open(self.log_path, "w")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "-s",
                str(self.tmp / "beat-schedule"),
                "-Q",
                self.queue,
                "-c",
                str(concurrency),
                "-n",
                f"{self.queue}-{self.starts}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(self._ready, timeout=60, message=f"worker ready (log {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.log()}")
        return " ready." in self.log()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acknowledgement, no goodbye."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def new_queue_name() -> str:
    return f"notif-test-{uuid.uuid4().hex[:10]}"


class Receiver:
    """A local HTTP endpoint standing in for a webhook bridge or an SMS gateway.

    ``mode``: "ok" answers 200, "down" answers 503, "hang" holds the first
    request until ``release`` is set. It drops a repeated idempotency key, as
    a well-behaved receiver does, and counts what it saw.
    """

    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []  # every request that arrived
        self.processed: dict[str, dict] = {}  # key -> first payload acted on
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                record = {
                    "key": key,
                    "body": body,
                    "headers": self.headers,  # case-insensitive, as HTTP headers are
                    "mode": receiver.mode,
                }
                with receiver.lock:
                    receiver.requests.append(record)
                if receiver.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver.lock:
                    if key not in receiver.processed:
                        receiver.processed[key] = json.loads(body)
                if receiver.mode == "hang":
                    receiver.arrived.set()
                    receiver.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def keys_seen(self) -> list[str]:
        with self.lock:
            return [r["key"] for r in self.requests]
