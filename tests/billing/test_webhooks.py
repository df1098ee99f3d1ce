"""Webhooks: each delivery signed and verified by a receiver on this machine, retried with
growing waits while the receiver fails, refused for addresses inside a network (checked at
each delivery), never following redirects; secrets rotate with a grace period; a Slack
incoming-webhook address gets Slack's format."""

import datetime as dt
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import threading

import pytest
import time_machine
import trustme
from django.urls import reverse
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler

from billing.errors import BillingError
from billing.models import Delivery, Notification
from billing.notifications import webhooks
from billing.notifications.services import (
    notification_send,
    webhook_endpoint_create,
    webhook_secret_rotate,
)
from tests.factories import MembershipFactory, OrganizationFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)


class Receiver:
    """An HTTPS server on 127.0.0.1 that records each request and answers `status`."""

    def __init__(self, ca: trustme.CA):
        self.requests: list[dict] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/billing-events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings, tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    settings.WEBHOOK_CA_BUNDLE = str(bundle)
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    server = Receiver(ca)
    yield server
    server.close()


@pytest.fixture
def acme():
    return OrganizationFactory(name="Acme Dental", slug="acme")


def notice(organization, key="k1"):
    notification_send(
        organization=organization,
        kind=Notification.Kind.TRIAL_ENDING,
        dedup_key=key,
        template="cancellation_reversed",
        context={"subscription": None, "renews_on": dt.date(2026, 4, 1)},
        data={"subscription_id": 7},
    )


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does with `Billing-Signature` (the README's example)."""
    parts = [part.split("=", 1) for part in header.split(",")]
    timestamp = next(value for key, value in parts if key == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(
        key == "v1" and hmac.compare_digest(value, expected.hexdigest()) for key, value in parts
    )


def test_a_delivery_is_signed_and_the_receiver_verifies_it(acme, receiver, committed):
    endpoint = webhook_endpoint_create(organization=acme, url=receiver.url)

    with time_machine.travel(NOW, tick=False), committed():
        notice(acme)

    [request] = receiver.requests
    header = request["headers"]["Billing-Signature"]
    assert header.startswith(f"t={int(NOW.timestamp())},v1=")
    assert verify(endpoint.secret, header, request["body"])
    assert not verify("whsec_wrong", header, request["body"])
    event = json.loads(request["body"])
    assert event["type"] == "trial_ending"
    assert event["organization"] == "acme"
    assert event["title"] == "Your subscription will renew"
    assert event["data"] == {"subscription_id": 7}
    delivery = Delivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("sent", 200, 1)


def test_a_failing_receiver_is_tried_again_with_growing_waits(acme, receiver, committed, settings):
    settings.WEBHOOK_RETRY_MINUTES = [1, 5]
    Schedule.objects.all().delete()
    webhook_endpoint_create(organization=acme, url=receiver.url)
    receiver.status = 503

    with time_machine.travel(NOW, tick=False), committed():
        notice(acme)
    delivery = Delivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.response_code) == ("retrying", 503)
    assert delivery.next_attempt_at == NOW + dt.timedelta(minutes=1)

    # The second try fails too; the third, five minutes later, gets through
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        scheduler(broker=get_broker())
    receiver.status = 200
    with time_machine.travel(NOW + dt.timedelta(minutes=8), tick=False):
        scheduler(broker=get_broker())

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 3, 200)
    assert len(receiver.requests) == 3
    assert not Schedule.objects.exists()


def test_a_redirect_is_not_followed(acme, receiver, committed):
    webhook_endpoint_create(organization=acme, url=receiver.url)
    receiver.status = 302
    receiver.headers = {"Location": "https://169.254.169.254/latest/meta-data/"}

    with committed():
        notice(acme)

    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "failed"
    assert "redirects are not followed" in delivery.error
    assert len(receiver.requests) == 1


def test_a_failing_webhook_changes_nothing_of_billing(acme, receiver, committed):
    webhook_endpoint_create(organization=acme, url=receiver.url)
    receiver.close()  # nobody listens any more

    with committed():
        subscription = SubscriptionFactory(organization=acme, now=NOW)

    assert subscription.invoices.get().number.startswith("INV-")
    assert set(Delivery.objects.filter(channel="webhook").values_list("status", flat=True)) == {
        "retrying"
    }


def test_a_rotated_secret_signs_with_both_until_the_grace_period_ends(acme, receiver, committed):
    endpoint = webhook_endpoint_create(organization=acme, url=receiver.url)
    old_secret = endpoint.secret
    endpoint = webhook_secret_rotate(endpoint=endpoint, now=NOW)

    with time_machine.travel(NOW + dt.timedelta(hours=23), tick=False), committed():
        notice(acme, key="during")
    with time_machine.travel(NOW + dt.timedelta(hours=25), tick=False), committed():
        notice(acme, key="after")

    during, after = receiver.requests
    assert verify(old_secret, during["headers"]["Billing-Signature"], during["body"])
    assert verify(endpoint.secret, during["headers"]["Billing-Signature"], during["body"])
    assert not verify(old_secret, after["headers"]["Billing-Signature"], after["body"])
    assert verify(endpoint.secret, after["headers"]["Billing-Signature"], after["body"])


def test_a_slack_address_gets_slacks_message_format(acme, receiver, committed):
    webhook_endpoint_create(organization=acme, url=receiver.url, format="slack")

    with committed():
        notice(acme)

    message = json.loads(receiver.requests[0]["body"])
    assert list(message) == ["text"]
    assert message["text"].startswith(
        "*Your subscription will renew*\nYour cancellation is withdrawn"
    )
    assert "|Open your billing page>" in message["text"]


# --- where webhooks may go ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address", "reason"),
    [
        ("http://hooks.example.com/x", "93.184.216.34", "Only https://"),
        ("https://hooks.example.com/x", "127.0.0.1", "this machine"),
        ("https://hooks.example.com/x", "::1", "this machine"),
        ("https://hooks.example.com/x", "10.0.0.5", "not a public address"),
        ("https://hooks.example.com/x", "192.168.1.10", "not a public address"),
        ("https://hooks.example.com/x", "172.16.0.1", "not a public address"),
        ("https://hooks.example.com/x", "169.254.169.254", "cloud metadata"),
        ("https://hooks.example.com/x", "fd00:ec2::254", "cloud metadata"),
        ("https://hooks.example.com/x", "::ffff:10.1.2.3", "not a public address"),
        ("https://user:pw@hooks.example.com/x", "93.184.216.34", "user name or password"),
    ],
)
def test_addresses_inside_a_network_are_refused(monkeypatch, url, address, reason):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *args, **kwargs: [(family, 1, 6, "", (address, 443))]
    )

    with pytest.raises(webhooks.DestinationRefused, match=reason):
        webhooks.destination_check(url)


def test_a_public_address_is_accepted(monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, 1, 6, "", ("93.184.216.34", 443))],
    )

    destination = webhooks.destination_check("https://hooks.example.com:8443/in?x=1")

    assert (destination.host, destination.port, destination.address, destination.path) == (
        "hooks.example.com",
        8443,
        "93.184.216.34",
        "/in?x=1",
    )


def test_the_address_is_checked_again_at_each_delivery(acme, monkeypatch, committed):
    # Given an endpoint whose name resolved to a public address when it was added
    answers = {"address": "93.184.216.34"}
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, 1, 6, "", (answers["address"], 443))],
    )
    webhook_endpoint_create(organization=acme, url="https://hooks.example.com/x")

    # When the name now resolves into the private network
    answers["address"] = "10.0.0.7"
    with committed():
        notice(acme)

    # Then nothing is sent and the log says why
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "failed"
    assert "10.0.0.7, which is not a public address" in delivery.error


def test_adding_an_endpoint_inside_the_network_is_refused(acme, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False

    with pytest.raises(BillingError, match="this machine"):
        webhook_endpoint_create(organization=acme, url="https://127.0.0.1:8443/hook")


# --- the settings page: add, test, redeliver ------------------------------------------------


def test_an_administrator_adds_a_webhook_sends_a_test_event_and_redelivers(
    acme, receiver, client, committed
):
    MembershipFactory(organization=acme, user=UserFactory(username="admin"))
    client.force_login(UserFactory(username="admin"))
    page = reverse("notifications:settings", args=["acme"])

    client.post(
        reverse("notifications:webhook_add", args=["acme"]), {"url": receiver.url, "format": "json"}
    )
    endpoint = acme.webhook_endpoints.get()
    with committed():
        client.post(reverse("notifications:webhook_action", args=["acme", endpoint.pk, "test"]))
    test_delivery = Delivery.objects.get(notification__kind="webhook_test")
    with committed():
        client.post(reverse("notifications:redeliver", args=["acme", test_delivery.pk]))

    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["webhook_test"] * 2
    log = client.get(page).text
    assert log.count("Test event") >= 2 and "Redeliver" in log
    assert endpoint.secret in log


def test_an_http_address_is_refused_on_the_page(acme, client):
    MembershipFactory(organization=acme, user=UserFactory(username="admin"))
    client.force_login(UserFactory(username="admin"))

    response = client.post(
        reverse("notifications:webhook_add", args=["acme"]),
        {"url": "http://hooks.example.com/x", "format": "json"},
    )

    assert response.status_code == 400
    assert "Only https:// addresses receive webhooks." in response.text
    assert not acme.webhook_endpoints.exists()
