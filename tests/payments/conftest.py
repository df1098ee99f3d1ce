"""Stripe's API, replayed: each test declares the calls it makes, in order, with
`stripe_api.expect(...)`, and gets the answer recorded in `fixtures/stripe/<name>.json`.
The network is fenced off: a test can reach this machine and nothing else.

Re-recording the fixtures from Stripe's test mode (needs a test-mode key and the internet):

    STRIPE_RECORD=1 STRIPE_SECRET_KEY=sk_test_... .venv/bin/pytest tests/payments -p no:xdist

sends the same calls to Stripe and overwrites each fixture with Stripe's answer. Tests whose
objects only a browser can create are skipped then (`replay_only`). Webhook events are not
recorded: they are Stripe's Event objects, signed here, and the tests point them at the
recorded objects' ids. Stripe keeps idempotency keys for 24 hours: record at most once a day.

dj-stripe's mirror reads the objects it syncs (`GET /v1/<objects>/<id>`, `GET /v1/account`)
in an order of its own: those reads are answered, in any order and as often as asked, with
the recorded object of that id; a read of an object never recorded fails the test.

The payment pages are tested with Acme Dental (`acme`) and its `wallet` of cards; the
details their forms are sent and the URL of each page and action are here too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import uuid
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from django.urls import reverse
from responses.registries import OrderedRegistry

from billing.catalog import services as catalog_services
from billing.models import Plan
from payments.models import PaymentMethod
from tests.factories import OrganizationFactory, SubscriptionFactory, card
from tests.helpers import people_of

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
API = "https://api.stripe.com"
RECORDING = os.environ.get("STRIPE_RECORD") == "1"
REPLAYED_KEY = "sk_test_replayedReplayedReplayed0000"  # shaped as a test-mode key
WEBHOOK_SECRET = "whsec_test_0123456789abcdefghijklmnopqrstuv"
# The webhook endpoint the tests deliver to: dj-stripe's endpoint model names it by a UUID.
WEBHOOK_ENDPOINT_UUID = uuid.UUID("5f0c7d6e-2b4a-4e8f-9a61-3c2d1e0f9b7a")
WEBHOOK_URL = f"/payments/stripe/webhook/{WEBHOOK_ENDPOINT_UUID}/"
READ = re.compile(r"/v1/(?:account|[a-z_]+/(?P<id>[A-Za-z0-9_]+))$")


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


BANK_ACCOUNT_IN_BROWSER = "A US bank account is verified in the browser (Financial Connections)."


def replay_only(reason: str):
    """For a test whose Stripe objects cannot be made through the API (a bank account
    verified in the browser): it replays, but recording skips it."""
    return pytest.mark.skipif(RECORDING, reason=reason)


class NetworkFenced(RuntimeError):
    pass


def _refuse_unless_loopback(host: str | bytes) -> None:
    host = host.decode() if isinstance(host, bytes) else host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise NetworkFenced(f"Tests may not reach {host}: replay a fixture instead.")


@pytest.fixture(autouse=True)
def network_fence(monkeypatch):
    """Refuse every name lookup and connection that would leave this machine (the database on
    127.0.0.1 and unix sockets still work), so a missing fixture fails the test instead of
    calling Stripe."""
    if RECORDING:
        return
    resolve, connect, connect_ex = (
        socket.getaddrinfo,
        socket.socket.connect,
        socket.socket.connect_ex,
    )

    def fenced_resolve(host, *args, **kwargs):
        if host is not None:
            _refuse_unless_loopback(host)
        return resolve(host, *args, **kwargs)

    def fenced(connect_function):
        def fenced_connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                _refuse_unless_loopback(address[0])
            return connect_function(sock, address)

        return fenced_connect

    monkeypatch.setattr(socket, "getaddrinfo", fenced_resolve)
    monkeypatch.setattr(socket.socket, "connect", fenced(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", fenced(connect_ex))


@cache
def _recorded_objects() -> dict[str, str]:
    """Every recorded object by its id (the account by `account`)."""
    objects = {}
    for path in FIXTURES.glob("*.json"):
        fixture = json.loads(path.read_text())
        if fixture.get("object") not in (None, "event") and "id" in fixture:
            key = "account" if fixture["object"] == "account" else fixture["id"]
            objects[key] = path.read_text()
    return objects


class ReplayRegistry(OrderedRegistry):
    """The calls a test declares, in their order; and reads of recorded objects by id."""

    def find(self, request):
        declared_next = self.registered and self.registered[0].matches(request)[0]
        read = READ.match(urlsplit(request.url).path) if request.method == "GET" else None
        if declared_next or read is None:
            return super().find(request)
        if RECORDING:
            return responses.PassthroughResponse("GET", request.url), []
        body = _recorded_objects().get(read["id"] or "account")
        if body is None:
            return None, [f"No recorded object for the read of {request.url}."]
        return responses.Response(
            "GET", request.url, body=body, content_type="application/json"
        ), []


class StripeApi:
    def __init__(self, mock: responses.RequestsMock):
        self.mock = mock
        self.expected: list[tuple[str, int]] = []

    def expect(self, method: str, path: str, fixture: str, *, status: int = 200) -> dict:
        """The next call is `method` on `path` (a regular expression, as ids change when
        recording) and Stripe answers with the fixture. Returns the fixture."""
        url = re.compile(re.escape(API) + path + "$")
        self.expected.append((fixture, status))
        if RECORDING:
            self.mock.add(responses.PassthroughResponse(method, url))
        else:
            body = (FIXTURES / f"{fixture}.json").read_text()
            self.mock.add(method, url, body=body, status=status, content_type="application/json")
        return load_fixture(fixture)

    def sent(self, index: int) -> tuple[dict[str, str], dict[str, str]]:
        """The form parameters and headers of the `index`-th call."""
        request = self.mock.calls[index].request
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        return dict(parse_qsl(body)), dict(request.headers)

    def write_recordings(self) -> None:
        """Overwrite the fixtures, once every call got the status its test expects."""
        answers = list(zip(self.expected, self.mock.calls, strict=True))
        for (fixture, status), call in answers:
            assert call.response.status_code == status, (fixture, call.response.text)
        for (fixture, _), call in answers:
            recorded = json.dumps(call.response.json(), indent=2) + "\n"
            (FIXTURES / f"{fixture}.json").write_text(recorded)


@pytest.fixture
def stripe_api(settings):
    """Stripe's API for one test: replayed from fixtures, or recorded with STRIPE_RECORD=1.
    Every declared call must be made, in order."""
    if RECORDING:
        if not os.environ.get("STRIPE_SECRET_KEY", "").startswith("sk_test_"):
            pytest.fail("Recording needs a test-mode STRIPE_SECRET_KEY (sk_test_...).")
        settings.STRIPE_SECRET_KEY = os.environ["STRIPE_SECRET_KEY"]
    else:
        settings.STRIPE_SECRET_KEY = REPLAYED_KEY
    settings.PAYMENT_GATEWAY = "stripe"
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=ReplayRegistry
    ) as mock:
        api = StripeApi(mock)
        yield api
        if RECORDING:
            api.write_recordings()


def webhook_endpoint_create(*, secret: str):
    """The endpoint as dj-stripe stores it when it creates one on Stripe (see the README)."""
    from djstripe.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        id="we_1QzVZaLkdIwHu7ixWbhk0001",
        livemode=False,
        url=f"https://billing.example.com{WEBHOOK_URL}",
        api_version="2026-05-27.dahlia",
        enabled_events=["*"],
        status="enabled",
        secret=secret,
        djstripe_uuid=WEBHOOK_ENDPOINT_UUID,
    )


@pytest.fixture
def webhook_secret(stripe_api):
    """Stripe's webhooks reach our endpoint; dj-stripe mirrors their objects from the
    recorded API."""
    webhook_endpoint_create(secret=WEBHOOK_SECRET)
    return WEBHOOK_SECRET


# --- the organization the payment pages are tested with -----------------------------------

VISA, MASTERCARD, AMEX = "4242424242424242", "5555555555554444", "378282246310005"
ALWAYS_DECLINED = "4000000000000341"


@pytest.fixture
def acme(now):
    """Acme Dental on Professional monthly, its first invoice open, with an admin and a
    member; a rival organization with its own admin; a support person."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly"), now=now
    )
    people_of(organization)
    return organization


@pytest.fixture
def wallet(acme):
    """A Visa by default, then a Mastercard and an American Express as backups, in that
    order; the subscription's first invoice is open."""
    return SimpleNamespace(
        visa=card(acme, VISA),
        mastercard=card(acme, MASTERCARD),
        amex=card(acme, AMEX),
        invoice=acme.invoices.get(),
    )


def card_details(**changes):
    return {
        "number": "4242 4242 4242 4242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "billing_name": "Ada Lovelace",
        "billing_address": "350 Fifth Avenue",
        "billing_postal_code": "10118",
        "billing_country": "us",
        **changes,
    }


def bank_details(**changes):
    return {
        "billing_name": "Acme Dental Inc.",
        "routing_number": "110000000",
        "account_number": "000123456789",
        **changes,
    }


def live_methods(organization):
    return list(
        PaymentMethod.objects.filter(organization=organization, removed_at__isnull=True)
        .order_by("-is_default", "priority", "pk")
        .values_list("last4", "is_default")
    )


def url_of(name, slug, wallet):
    args = {
        "method_default": [wallet.mastercard.pk],
        "method_up": [wallet.amex.pk],
        "method_down": [wallet.mastercard.pk],
        "method_edit": [wallet.amex.pk],
        "method_remove": [wallet.amex.pk],
        "pay_now": [wallet.invoice.number],
    }
    return reverse(f"payments:{name}", args=[slug, *args.get(name, [])])
