"""Each usage month's invoice split among cost centers and AI employees, frozen when the month
is invoiced."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.errors import BillingError
from billing.lifecycle import renewals
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    record_call,
)
from usage import services as usage_services
from usage.costs import selectors, services
from usage.models import CostShare

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def usd(amount):
    return Money(Decimal(amount), "USD")


def professional(**changes):
    """$199, 180,000 s included, $0.004/s beyond, no free numbers; subscribed on 1 Apr."""
    plan = PlanFactory(free_phone_numbers=0, **changes)
    return SubscriptionFactory(
        plan=plan, organization=OrganizationFactory(country="US"), start=APRIL, now=APRIL
    )


def calls(employee, seconds):
    for n, offset in enumerate(range(0, seconds, 6 * 3600)):
        record_call(
            employee=employee,
            seconds=min(6 * 3600, seconds - offset),
            connected_at=APRIL + dt.timedelta(days=1, minutes=n),
            call_id=f"c-{employee.pk}-{n}",
        )


def number(organization, phone, employee):
    PhoneNumberRateFactory()  # $1.50 + $0.25
    return usage_services.phone_number_provision(
        organization=organization,
        number=phone,
        number_type="local",
        country="US",
        employee=employee,
        now=APRIL,
    )


def renew(subscription):
    [invoice] = renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=MAY)
    return invoice


def split(organization, month=dt.date(2026, 4, 1)):
    costs = selectors.cost_month(organization=organization, month=month)
    return {
        (share.cost_center, share.employee_name): (
            share.usage,
            share.numbers,
            share.fixed,
            share.adjustments,
            share.total,
        )
        for share in costs.shares
    }


@pytest.fixture
def april():
    """Ava (Sales) called 150,000 s in April and answers a number; Ben (Support) 50,000 s:
    200,000 s, 20,000 s over the allowance ($80.00)."""
    subscription = professional()
    organization = subscription.organization
    ava = EmployeeFactory(
        organization=organization, name="Ava", cost_center="Sales", created_at=APRIL
    )
    ben = EmployeeFactory(
        organization=organization, name="Ben", cost_center="Support", created_at=APRIL
    )
    calls(ava, 150_000)
    calls(ben, 50_000)
    number(organization, "+12125550100", ava)
    return subscription


class TestTheSplitOfAnInvoicedMonth:
    def test_usage_by_seconds_numbers_to_their_employee_the_fee_by_seconds(self, april):
        # When April is invoiced (May's $199 fee, $80.00 overage, Ava's number $1.75)
        invoice = renew(april)

        # Then
        assert invoice.total == usd("280.75")
        assert split(april.organization) == {
            ("Sales", "Ava"): (usd("60.00"), usd("1.75"), usd("149.25"), usd("0"), usd("211.00")),
            ("Support", "Ben"): (usd("20.00"), usd("0"), usd("49.75"), usd("0"), usd("69.75")),
        }

    def test_taxes_follow_the_charges_and_the_shares_add_up_to_the_total(self, april):
        TaxRateFactory(percentage=Decimal("8.875"))

        invoice = renew(april)

        shares = CostShare.objects.filter(invoice=invoice)
        assert sum((share.total for share in shares), usd("0")) == invoice.total
        ava = shares.get(employee_name="Ava")
        assert ava.adjustments == usd("18.73")  # 211.00 / 280.75 of the $24.92 tax, to the cent

    def test_the_fee_equally_among_active_employees(self, april):
        services.cost_allocation_rule_set(organization=april.organization, fixed_fee="equally")

        renew(april)

        fixed = {key: value[2] for key, value in split(april.organization).items()}
        assert fixed == {("Sales", "Ava"): usd("99.50"), ("Support", "Ben"): usd("99.50")}

    def test_the_fee_to_one_cost_center(self, april):
        services.cost_allocation_rule_set(
            organization=april.organization, fixed_fee="cost_center", cost_center="Platform"
        )

        renew(april)

        shares = split(april.organization)
        assert shares[("Platform", "")] == (
            usd("0"),
            usd("0"),
            usd("199.00"),
            usd("0"),
            usd("199.00"),
        )
        assert shares[("Sales", "Ava")][2] == usd("0")

    def test_a_month_without_calls_splits_the_fee_equally_and_unassigned_numbers_to_no_one(self):
        subscription = professional()
        organization = subscription.organization
        EmployeeFactory(
            organization=organization, name="Ava", cost_center="Sales", created_at=APRIL
        )
        number(organization, "+12125550101", None)

        renew(subscription)

        assert split(organization) == {
            ("", ""): (usd("0"), usd("1.75"), usd("0"), usd("0"), usd("1.75")),
            ("Sales", "Ava"): (usd("0"), usd("0"), usd("199.00"), usd("0"), usd("199.00")),
        }


class TestFrozenWhenInvoiced:
    def test_re_tagging_an_employee_later_does_not_rewrite_history(self, april):
        renew(april)
        before = split(april.organization)

        # When Ava moves to Marketing and is renamed after April was invoiced
        ava = april.organization.employees.get(name="Ava")
        ava.cost_center, ava.name = "Marketing", "Ava Two"
        ava.save()

        # Then April's split is as it was
        assert split(april.organization) == before

    def test_a_month_not_yet_invoiced_has_no_split(self, april):
        costs = selectors.cost_month(organization=april.organization, month=dt.date(2026, 4, 1))

        assert (costs.invoice, costs.shares) == (None, [])


class TestTheRule:
    @pytest.mark.parametrize(
        ("fixed_fee", "cost_center"),
        [("cost_center", ""), ("equally", "Sales"), ("lottery", "")],
    )
    def test_a_rule_that_does_not_hold_is_refused(self, fixed_fee, cost_center):
        organization = OrganizationFactory()

        with pytest.raises(BillingError) as refusal:
            services.cost_allocation_rule_set(
                organization=organization, fixed_fee=fixed_fee, cost_center=cost_center
            )

        assert refusal.value.code == "invalid_allocation_rule"
        assert selectors.allocation_rule_for(organization=organization) is None


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seconds=st.lists(st.integers(min_value=0, max_value=120_000), min_size=1, max_size=4),
    numbers=st.lists(st.integers(min_value=-1, max_value=3), max_size=4),
    rule=st.sampled_from(["seconds", "equally", "cost_center"]),
    tax=st.sampled_from([None, Decimal("8.875"), Decimal("20")]),
    credit=st.sampled_from([None, "13.37", "5000.00"]),
)
def test_the_shares_add_up_to_the_invoice_total_to_the_cent(seconds, numbers, rule, tax, credit):
    from billing.invoicing import services as invoicing_services

    # Given a month of any calls, numbers, rule, tax and credit
    subscription = professional()
    organization = subscription.organization
    employees = [
        EmployeeFactory(
            organization=organization, name=f"E{n}", cost_center=f"C{n % 2}", created_at=APRIL
        )
        for n in range(len(seconds))
    ]
    for employee, used in zip(employees, seconds, strict=True):
        calls(employee, used)
    for n, owner in enumerate(numbers):
        employee = employees[owner] if 0 <= owner < len(employees) else None
        number(organization, f"+1212{organization.pk:03d}{n:04d}", employee)
    if tax is not None:
        TaxRateFactory(percentage=tax)
    if credit is not None:
        invoicing_services.balance_credit_grant(
            organization=organization,
            kind="goodwill",
            amount=usd(credit),
            description="x",
            now=APRIL,
        )
    services.cost_allocation_rule_set(
        organization=organization,
        fixed_fee=rule,
        cost_center="HQ" if rule == "cost_center" else "",
    )

    # When the month is invoiced
    invoice = renew(subscription)

    # Then its shares add up to its total, each in whole cents
    shares = list(CostShare.objects.filter(invoice=invoice))
    assert sum((share.total for share in shares), usd("0")) == invoice.total
    for share in shares:
        assert share.total == share.usage + share.numbers + share.fixed + share.adjustments
