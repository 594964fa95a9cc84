"""Open311 API keys: ``create NAME`` prints a new key once; ``revoke NAME``; ``list``."""

from django.core.management.base import BaseCommand, CommandError

from casework.errors import CaseworkError
from casework.models import Open311Key
from casework.open311.keys import open311_key_create, open311_key_revoke


class Command(BaseCommand):
    help = "Create, revoke and list Open311 API keys (only a hash of each key is stored)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it (shown only once)")
        create.add_argument("name")
        revoke = sub.add_parser("revoke", help="revoke a key by name")
        revoke.add_argument("name")
        sub.add_parser("list", help="list keys (names and state, never the keys)")

    def handle(self, *args, action, **options):
        try:
            if action == "create":
                _key, raw = open311_key_create(name=options["name"])
                self.stdout.write(raw)
            elif action == "revoke":
                key = open311_key_revoke(name=options["name"])
                self.stdout.write(f"revoked {key.name}")
            else:
                for key in Open311Key.objects.order_by("name"):
                    state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                    self.stdout.write(f"{key.name}\t{key.prefix}\t{state}\tlast used {used}")
        except CaseworkError as error:
            raise CommandError(f"{error.message} {error.field_errors}") from error
