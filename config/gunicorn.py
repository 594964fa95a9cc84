"""Gunicorn settings for the `web` process of the Procfile, read from the environment.

    gunicorn config.wsgi -c config/gunicorn.py

PORT (8000) or GUNICORN_BIND; WEB_CONCURRENCY worker processes (default 2 per
CPU, at most 8); GUNICORN_THREADS threads each (default 4: requests mostly wait
on PostgreSQL); GUNICORN_TIMEOUT seconds before a stuck worker is replaced;
FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-* headers are trusted.
Every thread keeps its own database connection (DATABASE_CONN_MAX_AGE), so a
node opens up to WEB_CONCURRENCY x GUNICORN_THREADS connections (docs/deploy.md).
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count(), 8))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then, so a slow leak never grows without bound.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Minors' data never in logs: the access log has the path (references, never names)
# and no query string, body or cookies.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# Gunicorn's control socket (one fixed path per user) is off unless a path is given:
# two masters on one host would otherwise fight over ~/.gunicorn/gunicorn.ctl.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
