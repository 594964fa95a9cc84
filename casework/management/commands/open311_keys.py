"""Open311 API keys: ``create NAME`` prints a new key once; ``revoke NAME``; ``list``."""

from casework.management.keycommand import KeyCommand
from casework.models import Open311Key
from casework.open311.keys import open311_key_create, open311_key_revoke


class Command(KeyCommand):
    help = "Create, revoke and list Open311 API keys (only a hash of each key is stored)."
    model = Open311Key

    def create(self, name):
        return open311_key_create(name=name)

    def revoke(self, name):
        return open311_key_revoke(name=name)
