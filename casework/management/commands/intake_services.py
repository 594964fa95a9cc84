"""Hand-off services: ``create NAME`` prints a new API key once; ``revoke NAME``; ``list``."""

from casework.management.keycommand import KeyCommand
from casework.models import IntakeService
from casework.services.intake import intake_service_create, intake_service_revoke


class Command(KeyCommand):
    help = (
        "Create, revoke and list the platform services that may hand cases over "
        "(POST /api/intake/handoffs/); only a hash of each key is stored."
    )
    model = IntakeService
    noun = "service"

    def create(self, name):
        return intake_service_create(name=name)

    def revoke(self, name):
        return intake_service_revoke(name=name)

    def extra_columns(self, row) -> str:
        return f"\t{row.handoffs.count()} hand-offs"
