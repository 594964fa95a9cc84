"""The WSGI application of the web process (gunicorn's ``config.wsgi``).

After Django is set up, the URLconf (and with it every view module) is loaded and
the objects made so far are frozen out of the garbage collector's reach
(``gc.freeze``): they live as long as the process, and without this every full
collection walked all of them again, a pause of about 100 ms every hundred or so
requests on a page such as the case page (docs/performance.md). It also keeps the
pages of a preloaded master shared with its forked workers.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
application = get_wsgi_application()


def _freeze_startup_heap() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    gc.collect()
    gc.freeze()


_freeze_startup_heap()
