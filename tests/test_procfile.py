"""The Procfile runs the production stack: gunicorn, one worker per queue, exactly one beat."""

import re
import runpy
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(m.groups() for m in (re.match(r"^([\w-]+):\s*(.+)$", line) for line in lines) if m)


def queues_of(command: str) -> list[str]:
    match = re.search(r"-Q (\S+)", command)
    names = match.group(1) if match else ""
    # ${NAME:-default} reads the same variable as the settings; the default is the queue.
    return [re.sub(r"\$\{\w+:-([\w-]+)\}", r"\1", q) for q in names.split(",")]


def test_one_worker_per_queue_and_exactly_one_beat():
    entries = procfile()
    workers = {name: cmd for name, cmd in entries.items() if " worker " in cmd}
    served = [q for cmd in workers.values() for q in queues_of(cmd)]
    wanted = {
        settings.NOTIFICATIONS_QUEUE,
        settings.CELERY_SWEEPS_QUEUE,
        settings.CELERY_TASK_DEFAULT_QUEUE,
    } | {
        entry["options"]["queue"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if "queue" in entry.get("options", {})
    }
    assert sorted(served) == sorted(wanted)  # each queue once, none left without a worker
    assert [name for name, cmd in entries.items() if "celery -A config beat" in cmd] == ["beat"]
    assert " -B" not in " ".join(workers.values())  # no embedded second beat


def test_web_is_gunicorn_with_its_config_and_release_migrates_and_collects():
    entries = procfile()
    assert entries["web"] == "gunicorn config.wsgi -c config/gunicorn.py"
    assert "migrate --noinput" in entries["release"]
    assert "collectstatic --noinput" in entries["release"]


def test_gunicorn_config_reads_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "6")
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert config["bind"] == "0.0.0.0:9123"
    assert (config["workers"], config["threads"]) == (3, 6)
    # gthread, as gunicorn ran "sync" with 4 threads anyway; a thread's worth of idle
    # keep-alive connections per thread (docs/performance.md).
    assert (config["worker_class"], config["worker_connections"]) == ("gthread", 12)
    assert config["keepalive"] == 5
    monkeypatch.setenv("GUNICORN_WORKER_CLASS", "sync")
    monkeypatch.setenv("GUNICORN_WORKER_CONNECTIONS", "6")
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert (config["worker_class"], config["worker_connections"]) == ("sync", 6)
    assert config["control_socket_disable"] is True
