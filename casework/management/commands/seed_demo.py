"""Build the demo organisation tree, demo users in every role, and demo cases."""

import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand

from casework import demo


@contextmanager
def quiet_loggers(names, level=logging.ERROR):
    """Keep in-process task logs (one line per notification) out of the seed's own report."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)


class Command(BaseCommand):
    help = (
        "Seed the demo: the Guangdong youth-league tree (province, cities, Guangzhou's "
        "districts and universities, branches, offline service stations, partner bodies, "
        "social organisations), a demo user for every role plus the superuser 'admin', and, "
        "on the first run only, the five demo stories and a few dozen generated cases in "
        "every state, all made through the case services. Safe to run again: nothing is "
        "duplicated, and every demo user's password is reset to the demo password."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=demo.DEFAULT_PASSWORD,
            help=f"password for every demo user and 'admin' (default: {demo.DEFAULT_PASSWORD})",
        )

    def handle(self, *args, password, verbosity=1, **options):
        def log(line: str) -> None:
            self.stdout.write(line)

        noisy = [] if verbosity > 1 else ["celery", "kombu"]
        with quiet_loggers(noisy):
            demo.seed(password=password, log=log)

        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS("Demo users (every one signs in with the same password):")
        )
        rows = demo.people_table()
        width = max(len(username) for username, _, _ in rows)
        for username, display_name, roles in rows:
            self.stdout.write(f"  {username.ljust(width)}  {display_name}  —  {roles}")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Password for all of them: {password}"))
        self.stdout.write("Sign in at /accounts/login/; the Django admin is at /admin/.")
