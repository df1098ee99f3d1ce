"""The webhook channel: a notice POSTed as JSON to an organization's HTTPS endpoint, signed,
or in Slack's incoming-webhook format.

Signature: every request carries `Billing-Signature: t=<unix time>,v1=<hex>`, where the hex
is the HMAC-SHA256, keyed with the endpoint's secret, of `"<t>.<body>"` (the raw body bytes).
While a rotated secret is in its grace period a second `v1=` signed with the previous secret
follows, so a receiver that still holds the old one keeps verifying.

A webhook URL is a door into our network, so every delivery (not only the saved URL) is
checked: HTTPS only; the host is resolved and every address it resolves to must be public
(no loopback, private, link-local, cloud metadata, multicast or reserved address), and the
connection goes to the address that was checked, so a DNS answer that changes between the
check and the connection cannot redirect it. Redirects are never followed, timeouts are
short and at most `MAX_RESPONSE_BYTES` of the answer are read. `WEBHOOK_ALLOW_LOOPBACK`
lets development and tests post to a receiver on this machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from billing.models import Notification, WebhookEndpoint

SIGNATURE_HEADER = "Billing-Signature"
MAX_RESPONSE_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 5
# Where clouds answer with instance credentials; link-local already, named for the record.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class DestinationRefused(Exception):
    """The URL may not be posted to: not HTTPS, or resolving to an address inside a network."""


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    address: str
    path: str


def destination_check(url: str) -> Destination:
    """Where a POST to `url` would go, or `DestinationRefused` with the reason."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise DestinationRefused("Only https:// addresses receive webhooks.")
    host = parts.hostname
    if not host:
        raise DestinationRefused("The address has no host name.")
    if parts.username or parts.password:
        raise DestinationRefused("The address may not carry a user name or password.")
    try:
        port = parts.port or 443
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (ValueError, socket.gaierror) as error:
        raise DestinationRefused(f"{host} cannot be resolved: {error}") from error
    addresses = list(dict.fromkeys(answer[4][0] for answer in answers))
    for address in addresses:
        _check_address(ipaddress.ip_address(address.split("%")[0]), host)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Destination(host=host, port=port, address=addresses[0], path=path)


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        if settings.WEBHOOK_ALLOW_LOOPBACK:
            return
        raise DestinationRefused(f"{host} resolves to {address}, this machine.")
    if address in METADATA_ADDRESSES:
        raise DestinationRefused(f"{host} resolves to {address}, a cloud metadata address.")
    if (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        raise DestinationRefused(f"{host} resolves to {address}, which is not a public address.")


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, endpoint: WebhookEndpoint, timestamp: int, body: bytes, now) -> str:
    signatures = [sign(secret=endpoint.secret, timestamp=timestamp, body=body)]
    if endpoint.previous_secret and (
        endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now
    ):
        signatures.append(sign(secret=endpoint.previous_secret, timestamp=timestamp, body=body))
    return ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])


def event_payload(notification: Notification) -> dict:
    """The JSON body of a signed delivery: the event's id and type, the organization, and
    what the notice says (`data` holds its facts)."""
    return {
        "id": f"evt_{notification.pk}",
        "type": notification.kind,
        "created": notification.created_at.isoformat(),
        "organization": notification.organization.slug,
        "title": notification.title,
        "summary": notification.summary,
        "link": notification.link,
        "data": notification.data,
    }


def slack_payload(notification: Notification) -> dict:
    """Slack's incoming-webhook message: a bold title, the summary, and the link."""
    text = f"*{notification.title}*\n{notification.summary}"
    if notification.link:
        text += f"\n<{notification.link}|{notification.link_label or 'Open'}>"
    return {"text": text}


@dataclass(frozen=True)
class PostResult:
    ok: bool
    worth_retrying: bool
    status: int | None = None
    error: str = ""


def webhook_post(
    *, endpoint: WebhookEndpoint, notification: Notification, now: dt.datetime
) -> PostResult:
    """One POST of `notification` to `endpoint`, checked and signed; never raises for what
    the network or the receiver does."""
    payload = (
        slack_payload(notification)
        if endpoint.format == WebhookEndpoint.Format.SLACK
        else event_payload(notification)
    )
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    try:
        destination = destination_check(endpoint.url)
    except DestinationRefused as error:
        return PostResult(ok=False, worth_retrying=False, error=str(error))
    timestamp = int(now.timestamp())
    host_header = (
        destination.host if destination.port == 443 else f"{destination.host}:{destination.port}"
    )
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": "AI-Employees-Billing-Webhooks/1",
        "Billing-Event-Id": f"evt_{notification.pk}",
        SIGNATURE_HEADER: signature_header(
            endpoint=endpoint, timestamp=timestamp, body=body, now=now
        ),
    }
    pool = urllib3.HTTPSConnectionPool(
        destination.address,
        destination.port,
        server_hostname=destination.host,
        assert_hostname=destination.host,
        cert_reqs="CERT_REQUIRED",
        ca_certs=settings.WEBHOOK_CA_BUNDLE or certifi.where(),
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        retries=False,
        maxsize=1,
    )
    try:
        response = pool.urlopen(
            "POST",
            destination.path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(MAX_RESPONSE_BYTES)  # the answer is not used: read a little, no more
        finally:
            response.close()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        return PostResult(ok=False, worth_retrying=True, error=f"{type(error).__name__}: {error}")
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return PostResult(ok=True, worth_retrying=False, status=status)
    if 300 <= status < 400:
        return PostResult(
            ok=False,
            worth_retrying=False,
            status=status,
            error=f"Answered {status}: redirects are not followed; give the final address.",
        )
    return PostResult(ok=False, worth_retrying=True, status=status, error=f"Answered {status}.")
