"""The demo as a visitor sees it: the logins it prints, plausible dates, cards that work, an
invoice of each kind of line, and a second `seed_demo` that adds nothing."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from billing.lifecycle.demo import DEMO_PASSWORD
from billing.models import (
    BalanceEntry,
    BillingRequest,
    Discount,
    Invoice,
    InvoiceLine,
    Membership,
    Organization,
    Plan,
    Subscription,
)
from payments.models import PaymentAttempt, PaymentMethod

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_seed")]

RENEWAL_JOB_DELAY = dt.timedelta(minutes=5)


@pytest.fixture
def demo(now):
    """The demo, seeded once for this module at `now`: returns that moment."""
    return now


def test_every_demo_date_lies_in_the_past_and_fits_its_period(demo):
    # Each invoice is issued when its period renewed, not all of them today
    invoices = Invoice.objects.exclude(status="draft")
    assert len({invoice.issued_at.date() for invoice in invoices}) >= 10
    for invoice in invoices:
        assert invoice.issued_at <= demo, invoice
        if invoice.kind == Invoice.Kind.USAGE:
            # A usage month is invoiced in arrears, minutes after it ends
            assert invoice.period_end <= invoice.issued_at, invoice
            assert invoice.issued_at <= invoice.period_end + RENEWAL_JOB_DELAY, invoice
        else:
            # A period's fee in advance: at its start, or the day the subscription began
            assert invoice.period_start <= invoice.issued_at, invoice
            assert invoice.issued_at - invoice.period_start <= dt.timedelta(days=1), invoice
        assert invoice.issued_at <= invoice.due_at
    # and numbered in the order they were issued
    numbers = list(invoices.order_by("issued_at", "pk").values_list("number", flat=True))
    assert numbers == sorted(numbers)

    # Paid between the invoice and today, with a card on file by then
    paid = Invoice.objects.filter(status="paid")
    assert paid.count() >= 15
    for invoice in paid:
        assert invoice.issued_at <= invoice.paid_at <= demo, invoice
    for attempt in PaymentAttempt.objects.select_related("invoice", "payment_method"):
        assert attempt.invoice.issued_at <= attempt.attempted_at <= demo, attempt
        assert attempt.completed_at <= demo, attempt
        if attempt.payment_method:
            assert attempt.payment_method.created_at <= attempt.attempted_at
    # The organization paying by transfer has paid every invoice due by now
    for invoice in Invoice.objects.filter(organization__slug="initech", status="open"):
        assert invoice.due_at > demo, invoice

    # The cards on file have not expired
    cards = PaymentMethod.objects.filter(kind="card")
    assert cards.count() >= 2
    for method in cards:
        assert (method.exp_year, method.exp_month) > (demo.year, demo.month), method
        assert method.created_at <= demo


def test_the_demo_shows_a_tax_a_discount_a_credit_and_an_overage_line(demo):
    charged = InvoiceLine.objects.filter(amount__gt=0)
    credited = InvoiceLine.objects.filter(amount__lt=0)

    assert charged.filter(kind="tax", description__startswith="New York sales tax").exists()
    assert credited.filter(kind="discount", description__contains="Welcome offer").exists()
    assert credited.filter(kind="credit").exists()
    assert charged.filter(kind="overage_calls", invoice__organization__slug="northwind").exists()
    # Given in the past, after the subscription began, before the invoices they went on
    credit = BalanceEntry.objects.get(kind="goodwill")
    used = BalanceEntry.objects.filter(organization=credit.organization, kind="applied")
    anchor = Subscription.objects.get(organization=credit.organization).anchor
    assert anchor < credit.created_at < used.earliest("created_at").created_at <= demo
    discount = Discount.objects.get()
    discounted = Invoice.objects.filter(lines__kind="discount").earliest("issued_at")
    assert anchor < discount.created_at < discounted.issued_at <= demo


def test_the_demo_has_a_billing_request_in_the_queue(demo):
    request = BillingRequest.objects.get()

    assert (request.organization.slug, request.kind, request.status) == (
        "northwind",
        "dispute",
        "answered",
    )
    assert request.line.kind == "overage_calls" and request.created_at <= demo


def test_a_second_seed_demo_adds_nothing(demo):
    def counts():
        return [
            model.objects.count()
            for model in (
                Organization,
                Plan,
                Membership,
                Subscription,
                Invoice,
                InvoiceLine,
                PaymentAttempt,
                PaymentMethod,
                BalanceEntry,
                Discount,
                BillingRequest,
            )
        ]

    before = counts()

    call_command("seed_demo")

    assert counts() == before
    assert Subscription.objects.count() == 3


def test_seed_demo_creates_three_organizations_on_different_plans_and_prints_logins(demo_seed, now):
    output = demo_seed
    subscriptions = Subscription.objects.select_related("plan").order_by("organization__name")
    assert [(s.organization.slug, s.plan.code) for s in subscriptions] == [
        ("acme-dental", "starter-monthly"),
        ("initech", "enterprise-initech"),
        ("northwind", "professional-annual"),
    ]
    for organization in Organization.objects.all():
        roles = set(organization.memberships.values_list("role", flat=True))
        assert roles == {"admin", "member"}
    assert get_user_model().objects.get(username="staff").is_superuser
    for login, role in (("support", "Support"), ("finance", "Finance"), ("catalog", "Catalog")):
        person = get_user_model().objects.get(username=login)
        assert person.is_staff and not person.is_superuser
        assert list(person.groups.values_list("name", flat=True)) == [role]
        assert f"{login:<8} / billing-demo" in output
    alice = get_user_model().objects.get(username="alice")
    assert not alice.is_staff and not alice.groups.exists()
    assert "alice    / billing-demo" in output
    assert "staff    / billing-demo" in output
    assert all(now in subscription.billing_period for subscription in subscriptions)
    assert "manage.py demo_totp_code` prints it" in output


@pytest.mark.parametrize("login", ["staff", "finance"])
def test_the_demo_staff_logins_sign_in_with_the_code_demo_totp_code_prints(
    client, now, capsys, login
):
    client.post("/admin/login/", {"username": login, "password": DEMO_PASSWORD})
    assert client.get("/admin/").status_code == 302  # the code first

    call_command("demo_totp_code")
    code = capsys.readouterr().out.strip()
    client.post("/accounts/two-factor/", {"code": code})

    assert client.get("/admin/").status_code == 200


def test_the_enterprise_example_is_private_to_its_organization(now):
    plan = Plan.objects.get(code="enterprise-initech")
    assert not plan.is_public
    assert plan.organization.slug == "initech"
    assert plan.max_active_employees is None  # unlimited
