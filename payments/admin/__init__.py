"""Support staff's view of payments: attempts, payment methods and the collection of each
invoice, plus the three things staff do about a payment, each on a confirmation page:
retry an open invoice now, record a bank transfer, refund a charge.

Everything here is written by the payment services, so every list and page is read-only;
the actions call one service each, and its refusal reaches staff as a message. Payment
methods show the processor and a masked token, never the token itself.
"""

from payments.admin import attempts, collections, methods, reconciliation

__all__ = ["attempts", "collections", "methods", "reconciliation"]
