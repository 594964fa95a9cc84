"""Hand-off services: ``create NAME`` prints a new API key once; ``revoke NAME``; ``list``."""

from django.core.management.base import BaseCommand, CommandError

from casework.errors import CaseworkError
from casework.models import IntakeService
from casework.services.intake import intake_service_create, intake_service_revoke


class Command(BaseCommand):
    help = (
        "Create, revoke and list the platform services that may hand cases over "
        "(POST /api/intake/handoffs/); only a hash of each key is stored."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a service and print its key (shown once)")
        create.add_argument("name")
        revoke = sub.add_parser("revoke", help="revoke a service's key by name")
        revoke.add_argument("name")
        sub.add_parser("list", help="list services (names and state, never the keys)")

    def handle(self, *args, action, **options):
        try:
            if action == "create":
                _service, raw = intake_service_create(name=options["name"])
                self.stdout.write(raw)
            elif action == "revoke":
                service = intake_service_revoke(name=options["name"])
                self.stdout.write(f"revoked {service.name}")
            else:
                for service in IntakeService.objects.order_by("name"):
                    state = (
                        f"revoked {service.revoked_at:%Y-%m-%d}" if service.revoked_at else "active"
                    )
                    used = (
                        f"{service.last_used_at:%Y-%m-%d %H:%M}"
                        if service.last_used_at
                        else "never"
                    )
                    count = service.handoffs.count()
                    self.stdout.write(
                        f"{service.name}\t{service.prefix}\t{state}\tlast used {used}\t"
                        f"{count} hand-offs"
                    )
        except CaseworkError as error:
            raise CommandError(f"{error.message} {error.field_errors}") from error
