"""Sign-in hardening: Argon2, login throttling, TOTP for flagged staff, security headers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from config.settings import privacy as privacy_settings

pytestmark = pytest.mark.django_db

PASSWORD = "pass-1234"  # tests.factories.UserFactory
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def sign_in(client, username, password=PASSWORD, **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password, **extra}, follow=False
    )


def error_codes(response) -> set[str]:
    return {e.code for e in response.context["form"].errors.as_data().get("__all__", [])}


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_argon2_is_the_first_password_hasher(settings):
    # (the test settings use MD5 for speed; production and development use these)
    settings.PASSWORD_HASHERS = privacy_settings.PASSWORD_HASHERS
    assert privacy_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    encoded = make_password("s3cret-pass", hasher="argon2")
    assert encoded.startswith("argon2$") and check_password("s3cret-pass", encoded)


def test_repeated_failures_lock_the_username_out_even_with_the_right_password(
    tree, client, settings
):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert sign_in(client, tree.handler.username, "wrong").status_code == 200
    response = sign_in(client, tree.handler.username)
    assert response.status_code == 200 and not signed_in(client)
    assert error_codes(response) == {"locked"}
    # and the page says so (in the page's language)
    [message] = response.context["form"].non_field_errors()
    assert str(message) in response.content.decode()
    # another account from the same address is not affected
    assert sign_in(client, tree.verifier.username).status_code == 302


def test_a_successful_sign_in_clears_the_failure_count(tree, client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    sign_in(client, tree.handler.username, "wrong")
    sign_in(client, tree.handler.username, "wrong")
    assert sign_in(client, tree.handler.username).status_code == 302
    client.logout()
    sign_in(client, tree.handler.username, "wrong")
    sign_in(client, tree.handler.username, "wrong")
    assert sign_in(client, tree.handler.username).status_code == 302


def flag_2fa(user, *, device=True) -> TOTPDevice | None:
    user.requires_2fa = True
    user.save(update_fields=["requires_2fa"])
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True) if device else None


def test_flagged_staff_need_a_valid_totp_code(tree, client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp's own back-off after a wrong code
    device = flag_2fa(tree.handler)
    # no code, a wrong code: refused
    assert error_codes(sign_in(client, tree.handler.username)) == {"otp_required"}
    assert error_codes(sign_in(client, tree.handler.username, otp_token="000000")) == {
        "otp_invalid"
    }
    assert not signed_in(client)
    # the code from the app: signed in, verified, pages open
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert sign_in(client, tree.handler.username, otp_token=code).status_code == 302
    assert client.get(reverse("casework:case_list")).status_code == 200


def test_flagged_staff_without_a_device_are_told_to_get_one(tree, client):
    flag_2fa(tree.handler, device=False)
    response = sign_in(client, tree.handler.username)
    assert not signed_in(client)
    assert error_codes(response) == {"otp_no_device"}


def test_a_session_not_verified_by_totp_is_signed_out(tree, client):
    # given a flagged user whose session came another way (e.g. the admin's own login)
    flag_2fa(tree.handler)
    client.force_login(tree.handler)
    # when a page is opened, then the session ends and the login page asks again
    response = client.get(reverse("casework:case_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not signed_in(client)


def test_unflagged_users_sign_in_with_a_password_alone(tree, client):
    assert sign_in(client, tree.youth.username).status_code == 302


def test_security_headers_on_every_response(tree, client):
    for response in (client.get(reverse("login")), client.get("/no-such-page/")):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response["Permissions-Policy"]
    client.force_login(tree.handler)
    assert "no-store" in client.get(reverse("casework:case_list"))["Cache-Control"]


def test_password_reset_by_email_explains_instead_of_failing(client):
    response = client.get(reverse("password_reset"))
    assert response.status_code == 200


def production_settings(**env) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in {"FIELD_ENCRYPTION_KEYS", "DJANGO_DEBUG"}
    }
    base.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="x7" * 20 + "k2j4h5g6f7d8s9a0q1w2e3r4t5y6",
        DJANGO_ALLOWED_HOSTS="youthvoice.example.org",
        **env,
    )
    code = "from django.conf import settings; print(len(settings.FIELD_ENCRYPTION_KEYS))"
    return subprocess.run(
        [sys.executable, "-c", code], env=base, capture_output=True, text=True, cwd=PROJECT
    )


def test_production_refuses_to_start_without_a_real_encryption_key():
    missing = production_settings()
    assert missing.returncode != 0 and "FIELD_ENCRYPTION_KEYS" in missing.stderr
    dev = production_settings(FIELD_ENCRYPTION_KEYS=privacy_settings.DEV_FIELD_ENCRYPTION_KEY)
    assert dev.returncode != 0 and "development key" in dev.stderr
    bad = production_settings(FIELD_ENCRYPTION_KEYS="not-a-key")
    assert bad.returncode != 0 and "not a Fernet key" in bad.stderr
    good = production_settings(FIELD_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "1"


def test_setup_totp_creates_then_confirms_a_device_and_flags_the_user(tree, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    out = io.StringIO()
    call_command("setup_totp", tree.handler.username, stdout=out)
    assert out.getvalue().startswith("otpauth://totp/")
    device = TOTPDevice.objects.get(user=tree.handler)
    assert not device.confirmed
    with pytest.raises(CommandError):
        call_command("setup_totp", tree.handler.username, confirm="000000", stdout=io.StringIO())
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    call_command("setup_totp", tree.handler.username, confirm=code, stdout=io.StringIO())
    device.refresh_from_db()
    tree.handler.refresh_from_db()
    assert device.confirmed and tree.handler.requires_2fa


def test_no_api_token_for_an_account_that_needs_two_factor(tree):
    from rest_framework.test import APIClient

    flag_2fa(tree.handler)
    response = APIClient().post(
        reverse("api:token"), {"username": tree.handler.username, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert not Token.objects.filter(user=tree.handler).exists()
