"""Evidence: files staff attach to a case (photos, scans, letters from the verification).

A file is accepted only when its first bytes say it is a JPEG, PNG or PDF and
its name agrees; the extension alone proves nothing. It is stored under
MEDIA_ROOT (outside the web root) with a random name, and the timeline records
only its id, hash and type: the file itself may name the youth.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..errors import InvalidTransition, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import Case, Evidence, User
from ._core import finish_change

# Content type -> (the leading bytes that identify it, the file name extensions allowed).
SIGNATURES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    Evidence.ContentType.JPEG: (b"\xff\xd8\xff", ("jpg", "jpeg")),
    Evidence.ContentType.PNG: (b"\x89PNG\r\n\x1a\n", ("png",)),
    Evidence.ContentType.PDF: (b"%PDF-", ("pdf",)),
}
SNIFF_BYTES = 16


def sniff_content_type(head: bytes) -> str | None:
    """The content type whose signature starts ``head``, or None (pure)."""
    for content_type, (signature, _extensions) in SIGNATURES.items():
        if head.startswith(signature):
            return str(content_type)
    return None


def _invalid(message) -> ValidationFailed:
    return ValidationFailed(field_errors={"file": [str(message)]})


def check_upload(upload) -> str:
    """Return the upload's content type, or raise ``ValidationFailed`` saying what is wrong."""
    if upload is None:
        raise _invalid(_("Choose a file."))
    limit = settings.CASEWORK_EVIDENCE_MAX_BYTES
    size = upload.size or 0
    if size == 0:
        raise _invalid(_("The file is empty."))
    if size > limit:
        raise _invalid(
            _("The file is larger than %(limit)s MB.") % {"limit": round(limit / 1048576, 1)}
        )
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    content_type = sniff_content_type(head)
    name = (upload.name or "").lower()
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    if content_type is None or extension not in SIGNATURES[content_type][1]:
        raise _invalid(_("Only JPEG, PNG and PDF files are accepted."))
    return content_type


def _sha256(upload) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def evidence_add(
    *,
    case: Case | int,
    actor: User,
    file,
    expected_version: int | None = None,
) -> Evidence:
    """Attach a file to an open case: a handler or verifier of the case (or a supervisor above).

    ``file`` is an uploaded file (Django ``UploadedFile``). Appends one
    ``evidence_added`` event whose payload holds the evidence id, its SHA-256
    and its content type, nothing else.
    """
    content_type = check_upload(file)
    sha256 = _sha256(file)
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not permissions.is_case_handler_or_verifier(case, actor):
            raise NotPermitted()
        if not case.is_open:
            raise InvalidTransition(_("The case is closed; it takes no more evidence."))
        evidence = Evidence(
            case=case,
            uploaded_by=actor,
            content_type=content_type,
            size=file.size,
            sha256=sha256,
        )
        extension = SIGNATURES[content_type][1][0]
        evidence.file.save(f"evidence.{extension}", file, save=False)
        try:
            evidence.save(force_insert=True)
            finish_change(
                case,
                kind=EventKind.EVIDENCE_ADDED,
                actor=actor,
                from_state=case.state,
                payload={"evidence": evidence.pk, "sha256": sha256, "content_type": content_type},
            )
        except BaseException:
            # The transaction rolls back; do not leave an orphan file behind.
            evidence.file.delete(save=False)
            raise
    return evidence
