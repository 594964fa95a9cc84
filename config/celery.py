"""The Celery app: queues per concern, routed when a task is published.

Delivery (``notifications.*``) and sweeps (``workflows.*``) have their own
queues, so workers can be scaled and restarted per concern. The router reads
the queue names from settings when it publishes, so a test run can use a
queue of its own.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("youthvoice")
app.config_from_object("django.conf:settings", namespace="CELERY")


def route_task(name, args, kwargs, options, task=None, **kw):
    from django.conf import settings

    if name.startswith("notifications."):
        return {"queue": settings.NOTIFICATIONS_QUEUE}
    if name.startswith("workflows."):
        return {"queue": settings.CELERY_SWEEPS_QUEUE}
    return None


app.conf.task_routes = (route_task,)
app.autodiscover_tasks()
