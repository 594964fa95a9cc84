"""Build the demo organisation tree, demo users in every role, and demo cases."""

from django.core.management.base import BaseCommand

from casework import demo


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

    def handle(self, *args, password, **options):
        def log(line: str) -> None:
            self.stdout.write(line)

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
