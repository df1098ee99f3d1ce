import datetime as dt

import pytest
import time_machine
from django.conf import settings

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# Whatever DEBUG says: a row lock taken out of the lock order fails the test that takes it.
settings.BILLING_CHECK_LOCK_ORDER = True


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need row locks and concurrent writers; on SQLite they are
    deselected (not skipped) and counted in the header, and `.ci/run` runs them on PostgreSQL."""
    if ON_POSTGRES:
        return
    postgres_only = [item for item in items if item.get_closest_marker("postgres")]
    if postgres_only:
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]
        config.hook.pytest_deselected(items=postgres_only)


def pytest_report_header(config):
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    note = "" if ON_POSTGRES else " (tests marked postgres run on the PostgreSQL leg)"
    return f"database: {engine}{note}"


@pytest.fixture
def now():
    """A fixed, ordinary moment: Monday 16 Mar 2026, 10:00 UTC."""
    moment = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(moment, tick=False):
        yield moment


@pytest.fixture(autouse=True)
def tasks_run_at_once(monkeypatch):
    """django-q2 runs a queued task at once, in the caller's thread, as a cluster would: an
    e-mail queued after commit is in the outbox (or failed, and scheduled again) right away."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def email_invoice(django_capture_on_commit_callbacks):
    """E-mail an invoice's notice (again) as the task queue does: rendered as the invoice
    stands at that moment, with its PDF."""

    from billing.models import Delivery
    from billing.notifications.invoice_notices import send_invoice_issued
    from billing.notifications.services import delivery_redeliver

    def send(invoice):
        delivery = Delivery.objects.filter(
            notification__dedup_key=f"invoice:{invoice.pk}:issued", channel="email"
        ).first()
        with django_capture_on_commit_callbacks(execute=True):
            if delivery is None:
                send_invoice_issued(invoice=invoice)
            else:
                delivery_redeliver(delivery=delivery)

    return send


@pytest.fixture
def mailoutbox_clear(mailoutbox):
    mailoutbox.clear()
    return mailoutbox


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(client):
    """A support-staff superuser, signed in on `client` with the second factor verified."""
    from tests.factories import UserFactory, sign_in

    user = UserFactory(username="support", is_staff=True, is_superuser=True)
    sign_in(client, user)
    return user


@pytest.fixture
def staff_client(client, staff):
    return client
