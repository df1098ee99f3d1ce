"""The task queue's brokers (django-q2's `broker_class`), which survive a SECRET_KEY rotation.

django-q2 signs every queued task with SECRET_KEY and drops, with a logged error, a task
whose signature does not match. Tasks queued before a rotation would be lost, so a task
signed with one of SECRET_KEY_FALLBACKS is signed again with the current key as it leaves
the queue, before django-q2 checks it.
"""

from django.core import signing
from django.utils.encoding import force_str
from django_q.brokers.orm import ORM as OrmBroker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf


def payload_signed_with_current_key(payload: str | bytes) -> str | bytes:
    """`payload` signed with SECRET_KEY if it carries the signature of SECRET_KEY or of one of
    SECRET_KEY_FALLBACKS; otherwise unchanged, for django-q2 to refuse."""
    # django-q2 signs with the cluster's name as the salt; Django's signer also tries the
    # fallback keys, which django-q2's own signer does not.
    signer = signing.TimestampSigner(key=Conf.SECRET_KEY, salt=Conf.PREFIX)
    try:
        value = signer.unsign(force_str(payload))  # Redis hands out bytes
    except signing.BadSignature:
        return payload
    return signer.sign(value)


class FallbackKeysBroker:
    def dequeue(self):
        tasks = super().dequeue()
        if not tasks:
            return tasks
        return [(ack_id, payload_signed_with_current_key(payload)) for ack_id, payload in tasks]


class ORM(FallbackKeysBroker, OrmBroker):
    pass


class Redis(FallbackKeysBroker, RedisBroker):
    pass
