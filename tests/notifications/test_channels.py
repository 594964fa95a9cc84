"""The channels against local receivers: signatures, gateways, error classes."""

import io
import json

import pytest
from django.core import mail

from casework.services import cases
from notifications import services
from notifications.channels import PermanentError, TransientError
from notifications.channels.base import post_json
from notifications.channels.sms import ConsoleSMSBackend, FileSMSBackend
from notifications.channels.webhook import sign, verify
from notifications.models import Notification, Preference

from .realworld import Receiver

pytestmark = pytest.mark.django_db
Status = Notification.Status


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def submit(tree):
    return cases.case_submit(
        youth=tree.youth,
        category=tree.category("study"),
        region_code="440105",
        title="学费问题",
        description="d",
    )


def test_webhook_is_signed_over_timestamp_and_body(tree, settings, receiver):
    settings.NOTIFICATIONS_WEBHOOK_URL = receiver.url
    settings.NOTIFICATIONS_WEBHOOK_SECRET = "s3cret"
    Preference.objects.create(user=tree.youth, webhook=True)
    case = submit(tree)
    services.fan_out_pending()
    row = Notification.objects.get(channel="webhook")
    services.deliver_many([row.pk])
    [post] = receiver.requests
    ts, signature = (
        post["headers"]["X-YouthVoice-Timestamp"],
        post["headers"]["X-YouthVoice-Signature"],
    )
    assert verify("s3cret", ts, post["body"], signature)
    assert not verify("other", ts, post["body"], signature)
    assert not verify("s3cret", ts, post["body"] + b" ", signature)
    assert not verify("s3cret", str(int(ts) - 3600), post["body"], sign("s3cret", "0", b""))
    assert post["headers"]["Idempotency-Key"] == row.key
    assert json.loads(post["body"])["case"] == case.reference


def test_sms_http_gateway_gets_the_client_ref(tree, settings, receiver):
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.sms.HTTPGatewaySMSBackend"
    settings.NOTIFICATIONS_SMS_GATEWAY_URL = receiver.url
    settings.NOTIFICATIONS_SMS_GATEWAY_TOKEN = "tok"
    Preference.objects.create(user=tree.youth, sms=True)
    tree.youth.phone = "13800000000"
    tree.youth.save()
    submit(tree)
    services.fan_out_pending()
    row = Notification.objects.get(channel="sms")
    services.deliver_many([row.pk])
    [post] = receiver.requests
    body = json.loads(post["body"])
    assert body["to"] == "13800000000" and body["client_ref"] == row.key
    assert post["headers"]["Authorization"] == "Bearer tok"
    row.refresh_from_db()
    assert row.status == Status.SENT


def test_http_errors_are_classified(receiver):
    receiver.mode = "down"
    with pytest.raises(TransientError):
        post_json(receiver.url, b"{}", {})
    with pytest.raises(TransientError):
        post_json("http://127.0.0.1:9/nothing-listens", b"{}", {})


def test_http_4xx_is_permanent(tree, settings):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(400)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PermanentError):
            post_json(f"http://127.0.0.1:{server.server_address[1]}/", b"{}", {})
    finally:
        server.shutdown()


def test_console_sms_masks_the_number():
    out = io.StringIO()
    ConsoleSMSBackend(out).send(to="13800001234", text="hi", client_ref="k")
    assert "1234" in out.getvalue() and "13800001234" not in out.getvalue()


def test_file_sms_backend_writes_json_lines(settings, tmp_path):
    settings.NOTIFICATIONS_SMS_FILE_PATH = str(tmp_path)
    FileSMSBackend().send(to="13800001234", text="你好", client_ref="k1")
    [file] = tmp_path.iterdir()
    assert json.loads(file.read_text())["client_ref"] == "k1"


def test_email_carries_the_key_as_message_id(tree, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tree.youth.email = "chen@example.org"
    tree.youth.save()
    submit(tree)
    services.fan_out_pending()
    row = Notification.objects.get(channel="email")
    services.deliver_many([row.pk])
    [message] = mail.outbox
    assert message.to == ["chen@example.org"]
    assert message.extra_headers["Message-ID"] == f"<{row.key}@youthvoice>"
