"""The endpoints payment processors call. They answer the processor, not a person: no login,
no CSRF token (the signature authenticates the request instead)."""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import webhooks

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify the signature before anything else: a bad one gets 400 and stores nothing. A
    non-2xx answer makes Stripe deliver the event again later."""
    try:
        event = stripe.Webhook.construct_event(
            request.body, request.headers.get("Stripe-Signature"), settings.STRIPE_WEBHOOK_SECRET
        )
    except (stripe.SignatureVerificationError, ValueError):
        logger.warning("Refused a Stripe webhook: bad signature, stale timestamp or bad body.")
        return HttpResponseBadRequest("Invalid signature.")
    try:
        webhooks.stripe_event_apply(event=event.to_dict())
    except webhooks.MalformedEvent as malformed:
        logger.warning("Refused a signed Stripe webhook: %s", malformed)
        return HttpResponseBadRequest(str(malformed))
    return HttpResponse("ok")


app_name = "payments_webhooks"
urlpatterns = [path("stripe/webhook/", stripe_webhook, name="stripe")]
