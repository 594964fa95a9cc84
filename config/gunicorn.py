"""Gunicorn settings for the `web` process of the Procfile, read from the environment.

    gunicorn config.wsgi -c config/gunicorn.py

PORT (8000) or GUNICORN_BIND; WEB_CONCURRENCY worker processes (default 2 per
CPU, at most 8); GUNICORN_WORKER_CLASS (default gthread); GUNICORN_THREADS threads
per worker (default 4); GUNICORN_WORKER_CONNECTIONS connections a worker holds at
once (default twice its threads: a busy thread each, and as many kept alive idle for
the load balancer's next requests); GUNICORN_KEEPALIVE seconds an idle connection is
kept (5); GUNICORN_TIMEOUT seconds a worker may go without a heartbeat before it is
replaced (default 120: a supervisor's CSV export of a large subtree streams for a
while); FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-* headers are trusted.
Every thread keeps its own database connection (DATABASE_CONN_MAX_AGE), so a node
opens up to WEB_CONCURRENCY x GUNICORN_THREADS connections (docs/deploy.md).

Why gthread, 4 workers of 4 threads on two cores: an API request here is mostly
Python (milliseconds of CPU, little waiting on PostgreSQL), but a request also
waits on the database, Redis and the network, and a sync worker waits with it.
Note that gunicorn runs ``sync`` with more than one thread as gthread anyway: until
session 4 this file said "sync" by default with 4 threads, and every measurement of
"sync" in docs/performance.md before then was in fact gthread; with one thread per
worker (true sync) the API's p95 was several times worse on the shared machine
(docs/performance.md). Keep-alive: a load balancer (nginx ``keepalive`` with
``proxy_http_version 1.1``) reuses its connections to the web nodes; gthread keeps
up to WORKER_CONNECTIONS − THREADS idle ones per worker (none when they are equal,
the default before session 4, so every request opened a TCP connection).
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count(), 8))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
threads = _int("GUNICORN_THREADS", 4)
# With gthread: a worker accepts connections while it has fewer than this many open,
# queueing them behind its busy threads (gunicorn's default, 1000, let one busy worker
# hoard requests while another sat idle). Each open keep-alive connection holds a
# place too: beyond one per thread, the rest are the idle keep-alive connections.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 2 * threads)
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then, so a slow leak never grows without bound. Not too
# often: a new worker imports the application again (about 1 s of CPU with its first
# requests); at 2,000 a busy node (100 requests/s, 4 workers) did so every 80 s.
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)
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
