"""Each run of the renewal job is recorded for staff (when, how long, due, invoices issued,
failed), and one that fails or is slow is e-mailed to the superusers once recorded."""

import pytest
from django.core import mail
from django.urls import reverse

from billing.lifecycle import renewals
from billing.models import RenewalRun
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import MAY, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True, email="ops@example.com")


@pytest.fixture
def three_due():
    return [subscribe(organization=OrganizationFactory(name=f"Clinic {n}")) for n in range(3)]


def fail_for(monkeypatch, failing):
    """Renewing the subscription `failing` raises, as a bug or a lost database would."""
    renew = renewals.subscription_renew_if_needed

    def renew_or_fail(*, subscription_id, **kwargs):
        if subscription_id == failing.pk:
            raise RuntimeError("the database went away")
        return renew(subscription_id=subscription_id, **kwargs)

    monkeypatch.setattr(renewals, "subscription_renew_if_needed", renew_or_fail)


def test_a_run_is_recorded_and_staff_see_it_in_the_admin(three_due, staff_client):
    renewals.renew_subscriptions_if_needed(now=MAY)

    run = RenewalRun.objects.latest()
    assert (run.due, run.invoices_issued, run.failed) == (3, 3, 0)
    page = staff_client.get(reverse("admin:billing_renewalrun_changelist")).content.decode()
    assert "Subscriptions per second" in page and "Duration" in page


def test_a_quick_run_without_failures_e_mails_no_one(three_due, superuser, committed):
    with committed():
        renewals.renew_subscriptions_if_needed(now=MAY)

    assert [message.to for message in mail.outbox if "Renewal run" in message.subject] == []


def test_a_failing_run_e_mails_the_superusers_after_it_is_recorded(
    three_due, superuser, committed, monkeypatch
):
    # Given one subscription whose renewal fails
    fail_for(monkeypatch, three_due[1])

    # When the job runs
    with committed():
        renewals.renew_subscriptions_if_needed(now=MAY)

    # Then the others are renewed, the run says which failed, and the superusers are told
    run = RenewalRun.objects.latest()
    assert (run.due, run.invoices_issued, run.failed) == (3, 2, 1)
    assert run.failed_subscriptions == [three_due[1].pk]
    [alert] = [message for message in mail.outbox if "Renewal run" in message.subject]
    assert alert.to == ["ops@example.com"]
    assert alert.subject == "Renewal run: 1 subscription failed"
    assert f"Subscriptions that failed, retried by the next run: {three_due[1].pk}." in alert.body


def test_a_slow_run_e_mails_the_superusers(three_due, superuser, committed, settings):
    settings.RENEWAL_SLOW_SECONDS = 0  # every run takes some time: this one is slow

    with committed():
        renewals.renew_subscriptions_if_needed(now=MAY)

    [alert] = [message for message in mail.outbox if "Renewal run" in message.subject]
    assert alert.subject.startswith("Renewal run slow: ")
    assert "Due: 3. Invoices issued: 3. Failed: 0." in alert.body
