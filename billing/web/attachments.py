"""Files people attached to billing requests, as pages and the admin serve them."""

from __future__ import annotations

from django.http import FileResponse

from billing.models import BillingRequestMessage


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
