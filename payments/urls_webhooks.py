"""The endpoint Stripe calls. It answers the processor, not a person: no login, no CSRF token
(the signature authenticates the request instead).

It is dj-stripe's webhook URL (`djstripe:djstripe_webhook_by_uuid`, so the endpoints dj-stripe
creates on Stripe point here) served by a view of ours: dj-stripe's own view stores a trigger
row before it checks the signature, and trusts a secret sent in a request header while DEBUG
is on. Here the signature is checked first, against the endpoint's secret only; a request
that fails gets 400 and nothing is stored. A verified event goes to dj-stripe, which stores
it, mirrors its object and calls our receivers (`payments.receivers`).
"""

from __future__ import annotations

import json
import logging
import uuid

import stripe
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import WebhookEndpoint, WebhookEventTrigger

from payments import webhooks

logger = logging.getLogger(__name__)

# dj-stripe verifies with this header's secret instead of the endpoint's while DEBUG is on.
DEBUG_OVERRIDE_HEADER = "X-Djstripe-Webhook-Secret"


@csrf_exempt
@login_not_required
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request: HttpRequest, uuid: uuid.UUID) -> HttpResponse:
    """Verify the signature before anything else. A non-2xx answer makes Stripe deliver the
    event again later."""
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    if DEBUG_OVERRIDE_HEADER in request.headers or not endpoint.secret:
        logger.warning("Refused a Stripe webhook: no secret to verify it with, or a forged one.")
        return HttpResponseBadRequest("Invalid signature.")
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode(),
            request.headers.get("Stripe-Signature") or "",
            endpoint.secret,
            endpoint.djstripe_tolerance,
        )
        event = json.loads(request.body)
    except (stripe.SignatureVerificationError, ValueError):
        logger.warning("Refused a Stripe webhook: bad signature, stale timestamp or bad body.")
        return HttpResponseBadRequest("Invalid signature.")
    try:
        webhooks.stripe_event_check(event=event)
    except webhooks.MalformedEvent as malformed:
        logger.warning("Refused a signed Stripe webhook: %s", malformed)
        return HttpResponseBadRequest(str(malformed))
    trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=endpoint)
    if not trigger.valid:
        return HttpResponseBadRequest("Invalid signature.")
    # dj-stripe calls the receivers only the first time it stores an event: a delivery
    # repeated because our reaction failed after that is applied here (once, by event id).
    webhooks.stripe_event_apply(event_id=trigger.event_id)
    return HttpResponse("ok")


# dj-stripe's namespace and URL name: its admin creates endpoints on Stripe with this URL.
app_name = "djstripe"
urlpatterns = [
    path("stripe/webhook/<uuid:uuid>/", stripe_webhook, name="djstripe_webhook_by_uuid"),
]
