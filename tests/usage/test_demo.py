import pytest
from django.core.management import call_command

from billing.models import Organization, Plan, Subscription
from usage.dashboard.selectors import usage_periods
from usage.models import (
    AIEmployee,
    Call,
    PhoneNumber,
    PhoneNumberRate,
    UsageCounter,
    UsageReport,
)
from usage.services import phone_number_rate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_seed")]

GIB = 1024**3


@pytest.fixture
def demo(demo_seed, now):
    """The demo, seeded once for this module at `now`: returns what seeding printed."""
    return demo_seed


def row_counts():
    return [
        model.objects.count()
        for model in (AIEmployee, PhoneNumber, PhoneNumberRate, Call, UsageCounter, UsageReport)
    ]


def test_seed_demo_seeds_the_usage_too_and_a_second_run_adds_nothing(demo, capsys):
    counts = row_counts()

    call_command("seed_demo")

    assert "Usage demo ready." in demo
    assert row_counts() == counts
    assert "0 calls recorded" in capsys.readouterr().out


def test_every_organization_has_call_history_in_its_earlier_usage_months(demo):
    for subscription in Subscription.objects.select_related("organization"):
        earlier_months = usage_periods(subscription=subscription)[1:]
        counters = UsageCounter.objects.filter(organization=subscription.organization)
        seconds = dict(counters.values_list("period_start", "call_seconds"))
        first_call = Call.objects.filter(organization=subscription.organization).earliest(
            "connected_at"
        )

        assert len(earlier_months) >= 4, subscription.organization
        assert first_call.connected_at in earlier_months[-1]  # from the subscription's start
        assert all(seconds.get(month.start, 0) > 0 for month in earlier_months)
        assert counters.filter(api_calls__gt=0, storage_bytes__gt=0).count() >= len(earlier_months)


def test_the_demo_stays_within_each_plan(demo):
    for subscription in Subscription.objects.select_related("organization", "plan"):
        organization, plan = subscription.organization, subscription.plan
        employees = organization.employees.filter(is_active=True).count()
        numbers = organization.phone_numbers.filter(released_at__isnull=True).count()
        counters = UsageCounter.objects.filter(organization=organization)

        assert employees <= (plan.max_active_employees or employees), organization
        assert numbers <= (plan.max_phone_numbers or numbers), organization
        if plan.overage_policy == Plan.OveragePolicy.BLOCK:
            # Calls stop once the balance is used; the last one allowed completes.
            assert all(c.call_seconds < plan.included_call_seconds + 20 * 60 for c in counters)
        elif plan.included_call_seconds is not None:
            seconds = [c.call_seconds for c in counters]
            assert sum(seconds) <= plan.included_call_seconds * len(seconds), organization
        if plan.storage_gb is not None:
            assert all(c.storage_peak_bytes <= plan.storage_gb * GIB for c in counters)
        if plan.api_calls_per_month is not None:
            assert all(c.api_calls <= plan.api_calls_per_month for c in counters)


def test_every_organization_has_teams_and_numbers_from_the_price_list(demo):
    rates = {
        (rate.number_type, rate.country, rate.region, str(rate.monthly_price.currency)): rate
        for rate in PhoneNumberRate.objects.all()
    }
    for country in ("US", "DE"):
        for number_type in ("local", "toll_free"):
            assert (number_type, country, "", "USD") in rates
    california = rates["local", "US", "CA", "USD"]
    assert california.regulatory_fee > rates["local", "US", "", "USD"].regulatory_fee
    assert all(rate.vanity_surcharge.amount > 0 for rate in rates.values())

    for organization in Organization.objects.all():
        employees = organization.employees.all()
        numbers = organization.phone_numbers.all()

        assert employees.filter(is_active=False).exists(), organization
        assert {"Sales", "Support", "Scheduling"} & set(
            employees.values_list("cost_center", flat=True)
        )
        assert numbers.filter(number_type="toll_free").exists(), organization
        assert numbers.filter(is_vanity=True).exists(), organization
        assert numbers.filter(released_at__isnull=False).count() == 1, organization
        for number in numbers:  # type price + regional regulatory fee (+ vanity surcharge)
            rate = phone_number_rate(
                number_type=number.number_type,
                country=number.country,
                region=number.region,
                currency=organization.currency,
            )
            assert number.monthly_fee == rate.monthly_fee(vanity=number.is_vanity)
