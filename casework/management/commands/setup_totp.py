"""Give a staff account a TOTP device and require two-factor sign-in for it.

Prints the otpauth:// link once (to put into an authenticator app, e.g. as a QR
code); the device is confirmed only after a first code from the app is given
with --confirm CODE. Nothing personal is printed.
"""

from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from casework.models import User


class Command(BaseCommand):
    help = "Create (or confirm) a user's TOTP device and turn on 'requires two-factor sign-in'."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--confirm", metavar="CODE", help="a code from the app to confirm")

    def handle(self, *args, username, confirm=None, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if confirm:
            device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
            if device is None or not device.verify_token(confirm.strip()):
                raise CommandError("That code does not match the unconfirmed device.")
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            User.objects.filter(pk=user.pk).update(requires_2fa=True)
            self.stdout.write(self.style.SUCCESS("Confirmed; two-factor sign-in is now required."))
            return
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        self.stdout.write(device.config_url)
        self.stdout.write(
            f"Add this to the app, then run: manage.py setup_totp {username} --confirm CODE"
        )
