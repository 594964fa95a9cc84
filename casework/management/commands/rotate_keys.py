"""Re-encrypt every encrypted column under the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first (keep the old ones after it), run this command,
then drop the old keys. Batches of --batch-size rows, one transaction each, in
primary key order; an interrupted run can be started again. Progress goes to
stderr as a bar per table; no value is ever printed.

It also recomputes the search digests of people's names and contact details
(needed after a change of SEARCH_DIGEST_KEY, or of the SECRET_KEY it derives from).
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from tqdm import tqdm

from casework import crypto


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields with the newest key (FIELD_ENCRYPTION_KEYS[0])."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--new-key", action="store_true", help="Print a fresh Fernet key and stop."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")

    def handle(self, *args, batch_size, new_key, no_progress, **options):
        if new_key:
            self.stdout.write(crypto.new_key())
            return
        crypto.cipher()  # fail now, clearly, when no key is configured
        total = 0
        for model in apps.get_models():
            fields = crypto.encrypted_fields(model)
            if not fields:
                continue
            label = model._meta.label
            count = model._base_manager.count()
            with tqdm(
                total=count, desc=label, unit="row", disable=no_progress, file=self.stderr
            ) as bar:
                done = crypto.reencrypt_model(
                    model, fields, batch_size=batch_size, progress=bar.update
                )
            total += done
            self.stdout.write(f"{label}: {done} rows ({', '.join(fields)})")
        from casework.services.privacy import refresh_search_digests

        digests = refresh_search_digests(batch_size=batch_size)
        self.stdout.write(f"Search digests recomputed for {digests} people.")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} rows."))
