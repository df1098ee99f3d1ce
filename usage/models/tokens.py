"""The calling platform's service tokens."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class ServiceToken(models.Model):
    """A bearer token for the calling platform. Only its SHA-256 is stored; the token is
    shown once, when staff create it. It reaches every organization only when it says so
    (`all_organizations`: the calling platform's own token); otherwise only the
    organizations it names. From `expires_at` on it is refused."""

    PREFIX = "svc_"

    name = models.CharField(max_length=100, help_text="Which system uses it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(
        max_length=12, editable=False, help_text="The token's first characters, to recognise it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    all_organizations = models.BooleanField(
        default=False,
        help_text="Reaches every organization, present and future: the calling platform's "
        "own token. Otherwise it reaches only the organizations named.",
    )
    organizations = models.ManyToManyField(
        "billing.Organization",
        blank=True,
        related_name="service_tokens",
        help_text="The only organizations this token reaches (when it does not reach all).",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused from this moment on. Empty: it never expires."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
