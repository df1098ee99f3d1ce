"""Files people attached to billing requests, as pages and the admin serve them."""

from __future__ import annotations

from django import forms
from django.http import FileResponse

from billing.models import BillingRequestMessage
from billing.support.services import Attachment


class AttachmentField(forms.FileField):
    """An optional file, read whole; the service checks its type by content and its size."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            help_text="Optional: a PDF, PNG or JPEG of at most 5 MB.",
            widget=forms.ClearableFileInput(
                attrs={"accept": "application/pdf,image/png,image/jpeg"}
            ),
            **kwargs,
        )


def attachment_of(form: forms.Form) -> Attachment | None:
    """The file a valid form carries, as the services take it."""
    upload = form.cleaned_data.get("attachment")
    if not upload:
        return None
    return Attachment(name=upload.name, content=upload.read())


def attachment_response(message: BillingRequestMessage) -> FileResponse:
    """A download, never shown inline: the type is the one its content proved, and the
    browser is told not to guess another nor run anything in it."""
    response = FileResponse(
        message.attachment.open("rb"),
        as_attachment=True,
        filename=message.attachment_name or message.attachment.name.rsplit("/", 1)[-1],
        content_type=message.attachment_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
