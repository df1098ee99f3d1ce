import contextlib
import datetime as dt
import io

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from tests import database_template

ON_POSTGRES = connection.vendor == "postgresql"

# Whatever DEBUG says: a row lock taken out of the lock order fails the test that takes it.
settings.BILLING_CHECK_LOCK_ORDER = True
# Each test database gets dj-stripe's tables from one migration written from its models
# instead of replaying its own three (most of a minute); tests/migrations/ says why.
settings.MIGRATION_MODULES = {"djstripe": "tests.migrations.djstripe"}


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
    engine = connection.vendor
    note = "" if ON_POSTGRES else " (tests marked postgres run on the PostgreSQL leg)"
    return f"database: {engine}{note}"


# A fixed, ordinary moment: Monday 16 Mar 2026, 10:00 UTC.
NOW = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Just before the test databases are made: an in-memory SQLite one is copied from the
    one the last run migrated, when its migrations are the same (tests/database_template.py)."""
    with database_template.migrate_from_template_while_databases_are_made():
        yield


@pytest.fixture
def now():
    """A fixed, ordinary moment: Monday 16 Mar 2026, 10:00 UTC."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def tasks_run_at_once(monkeypatch):
    """django-q2 runs a queued task at once, in the caller's thread, as a cluster would: an
    e-mail queued after commit is in the outbox (or failed, and scheduled again) right away."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def service_tokens_read_afresh():
    """Each test starts with no service token kept by the process (the database it read
    them from is rolled back)."""
    from usage.tokens import selectors

    selectors._recent.clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit (e-mails, webhooks, the queued tasks) at the end of a
    `with committed():` block, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


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
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


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


@pytest.fixture(scope="module")
def module_transaction(django_db_setup, django_db_blocker):
    """A transaction around a whole test module, rolled back when the module ends: what the
    module's own fixtures build in it is built once and shared by its tests, each of which
    runs in a savepoint inside it, so what one test writes never reaches the next. Returns
    `building()`, a context to build in, at `now` and as the tests run (tasks at once, fast
    password hashing). A module that uses it holds no `transaction=True` tests."""
    from django_q.conf import Conf

    @contextlib.contextmanager
    def building():
        with (
            django_db_blocker.unblock(),
            time_machine.travel(NOW, tick=False),
            override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS),
            pytest.MonkeyPatch.context() as monkeypatch,
        ):
            monkeypatch.setattr(Conf, "SYNC", True)
            yield NOW

    with django_db_blocker.unblock():
        outermost = transaction.atomic()
        # Marked as Django's TestCase marks its own: the code under test still opens its
        # own outermost (even durable) transactions, and the lock order is checked in each.
        outermost._from_testcase = True
        outermost.__enter__()
    try:
        yield building
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outermost.__exit__(None, None, None)


@pytest.fixture(scope="module")
def demo_seed(module_transaction):
    """`seed_demo` run once for the whole test module (`module_transaction`); returns what
    it printed. Every test of a module that uses it sees the demo: use it for the whole
    module (`pytest.mark.usefixtures`)."""
    output = io.StringIO()
    with module_transaction():
        call_command("seed_demo", stdout=output)
    return output.getvalue()
