from django.db import models
from django.utils.text import capfirst

from billing.errors import BillingError, ErrorCode


class AppendOnly(models.Model):
    """A row of an append-only record (a ledger, a history of changes): written once, never
    changed or deleted; a correction is another row."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk:
            raise BillingError(ErrorCode.LEDGER_APPEND_ONLY, self._refusal("changed"))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise BillingError(ErrorCode.LEDGER_APPEND_ONLY, self._refusal("deleted"))

    def _refusal(self, done: str) -> str:
        return f"{capfirst(self._meta.verbose_name_plural)} are never {done}; add another."
