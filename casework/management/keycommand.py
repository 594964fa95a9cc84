"""The shared shape of the key commands (``open311_keys``, ``intake_services``).

``create NAME`` prints a new key once, ``revoke NAME`` revokes it, ``list`` shows
names and state, never the keys. A command names its model, its create and
revoke services, and what one key is called.
"""

from django.core.management.base import BaseCommand, CommandError

from casework.errors import CaseworkError


class KeyCommand(BaseCommand):
    model = None  # a casework.models.KeyHolder
    noun = "key"

    def create(self, name):  # -> (row, raw key)
        raise NotImplementedError

    def revoke(self, name):  # -> row
        raise NotImplementedError

    def extra_columns(self, row) -> str:
        return ""

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser(
            "create", help=f"create a {self.noun} and print its key (shown once)"
        )
        create.add_argument("name")
        revoke = sub.add_parser("revoke", help=f"revoke a {self.noun}'s key by name")
        revoke.add_argument("name")
        sub.add_parser("list", help=f"list {self.noun}s (names and state, never the keys)")

    def handle(self, *args, action, **options):
        try:
            if action == "create":
                _row, raw = self.create(options["name"])
                self.stdout.write(raw)
            elif action == "revoke":
                self.stdout.write(f"revoked {self.revoke(options['name']).name}")
            else:
                for row in self.model.objects.order_by("name"):
                    state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                    used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                    self.stdout.write(
                        f"{row.name}\t{row.prefix}\t{state}\tlast used {used}"
                        + self.extra_columns(row)
                    )
        except CaseworkError as error:
            raise CommandError(f"{error.message} {error.field_errors}") from error
