"""Sign-in hardening: login throttling, TOTP for flagged staff, security headers.

- Throttling: failed sign-ins are counted in the cache per (username, address);
  past ``LOGIN_FAILURE_LIMIT`` that pair is refused for ``LOGIN_LOCKOUT``, with a
  message saying so, before the password is even checked.
- Two-factor: a user with ``requires_2fa`` must give a code from a confirmed
  TOTP device (django-otp) at sign-in; ``RequireTwoFactorMiddleware`` signs out
  such a user whose session was not verified that way (e.g. through the admin's
  own login page), so there is no way around it.
"""

from __future__ import annotations

import hashlib

from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.debug import SafeExceptionReporterFilter
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login


def _client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _throttle_key(username: str, address: str) -> str:
    # Hashed: the cache never holds a username in clear.
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()
    return f"login-fail:{digest}"


def login_locked(username: str, address: str) -> bool:
    return cache.get(_throttle_key(username, address), 0) >= settings.LOGIN_FAILURE_LIMIT


def note_login_failure(username: str, address: str) -> int:
    key = _throttle_key(username, address)
    timeout = int(settings.LOGIN_LOCKOUT.total_seconds())
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout)
        return 1


def clear_login_failures(username: str, address: str) -> None:
    cache.delete(_throttle_key(username, address))


class SecureAuthenticationForm(AuthenticationForm):
    """Username and password, a TOTP code for users who need one, and throttling."""

    otp_token = forms.CharField(
        label=_("Two-factor code"),
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=_("Staff accounts with two-factor sign-in: the 6-digit code from your app."),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _("Too many failed sign-ins. Try again in %(minutes)d minutes."),
        "otp_required": _("Enter the code from your authenticator app."),
        "otp_invalid": _("That two-factor code is not valid."),
        "otp_no_device": _(
            "Your account needs two-factor sign-in but has no authenticator set up. "
            "Ask an administrator to set one up."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = _client_address(self.request)
        if username and login_locked(username, address):
            raise forms.ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": int(settings.LOGIN_LOCKOUT.total_seconds() // 60)},
            )
        try:
            cleaned = super().clean()
            self.otp_device = self._check_second_factor(self.get_user())
        except forms.ValidationError:
            if username:
                note_login_failure(username, address)
            raise
        clear_login_failures(username, address)
        return cleaned

    def _check_second_factor(self, user):
        if user is None or not getattr(user, "requires_2fa", False):
            return None
        if not list(devices_for_user(user, confirmed=True)):
            raise forms.ValidationError(self.error_messages["otp_no_device"], code="otp_no_device")
        token = (self.cleaned_data.get("otp_token") or "").strip()
        if not token:
            raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
        device = match_token(user, token)
        if device is None:
            raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
        return device


class SecureLoginView(LoginView):
    form_class = SecureAuthenticationForm

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.otp_device is not None:
            otp_login(self.request, form.otp_device)
        return response


def password_reset_unavailable(request, *args, **kwargs):
    """E-mail addresses are encrypted, so an address cannot be looked up to send a reset."""
    return render(request, "registration/password_reset_unavailable.html", status=200)


class RequireTwoFactorMiddleware:
    """Sign out a ``requires_2fa`` user whose session was not verified with a code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "requires_2fa", False)
            and not user.is_verified()
        ):
            logout(request)
            return redirect(f"{reverse('login')}?next={request.path}")
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """The headers Django's SecurityMiddleware does not set itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "SECURITY_PERMISSIONS_POLICY", "")
        if policy:
            response.headers.setdefault("Permissions-Policy", policy)
        # Pages may show personal data: no shared or on-disk caching of them.
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store, private")
        return response


class PersonalDataExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (admin e-mails, logs) without form data or local variables.

    Any POST may carry a youth's words, and any frame's locals may hold a decrypted
    model, so both are replaced by the cleansed marker; the traceback lines stay.
    """

    def get_post_parameters(self, request):
        if request is None:
            return {}
        return {key: self.cleansed_substitute for key in request.POST}

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
