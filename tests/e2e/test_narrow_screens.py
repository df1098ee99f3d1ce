"""Every billing page on a phone (390 px wide): nothing scrolls sideways, and every action
the page offers on a desktop is on screen, not cut off nor hidden in a box that scrolls."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.catalog import services as catalog_services
from billing.lifecycle import renewals
from billing.models import Plan
from tests.e2e.test_billing_pages import sign_in
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    card,
    record_call,
)
from usage import services as usage_services

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# The page's actions: its buttons and button links, its form controls, the section tabs and
# the top bar. What sits in a closed disclosure (the period picker, the organization switcher)
# is left out on both widths.
ACTIONS_JS = """() => {
  const selector = "main a.button, main button, main select, main input:not([type=hidden]),"
    + " .tabs a, .topbar a, .topbar button, .topbar summary";
  const width = window.innerWidth;
  const clipped = (element, rect) => {
    for (let box = element.parentElement; box; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") {
        const edge = box.getBoundingClientRect();
        if (rect.left < edge.left - 0.5 || rect.right > edge.right + 0.5) return true;
      }
    }
    return false;
  };
  return [...document.querySelectorAll(selector)]
    .filter((element) => element.checkVisibility({ checkVisibilityCSS: true }))
    .map((element) => {
      const rect = element.getBoundingClientRect();
      const name = (element.getAttribute("aria-label") || element.textContent
        || element.name || element.id).replace(/\\s+/g, " ").trim();
      const onScreen = rect.width > 0 && rect.left >= -0.5 && rect.right <= width + 0.5
        && !clipped(element, rect);
      return { name, onScreen };
    });
}"""


@pytest.fixture
def acme():
    """Acme Dental on Professional for six weeks: two cards, invoices paid and open, AI
    employees (one deactivated), phone numbers and calls; Alice administers it."""
    catalog_services.catalog_load()
    now = timezone.now()
    start = now - dt.timedelta(days=45)
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme-dental", timezone="America/New_York"
    )
    card(organization, now=start)
    card(organization, "5555555555554444", now=start)
    subscription = SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code="professional-monthly"),
        start=start,
        now=start,
    )
    employees = [
        EmployeeFactory(organization=organization, name=name, cost_center=team, created_at=start)
        for name, team in (("Reception", "Front desk"), ("Reminders", "Scheduling"), ("Night", ""))
    ]
    usage_services.employee_deactivate(employee=employees[2], now=start + dt.timedelta(days=3))
    PhoneNumberRateFactory()
    for n, employee in enumerate(employees[:2]):
        usage_services.phone_number_provision(
            organization=organization,
            number=f"+1212555014{n}",
            number_type="local",
            country="US",
            employee=employee,
            now=start,
        )
    for day in range(40):
        record_call(
            employee=employees[day % 2],
            seconds=600 + 30 * day,
            connected_at=start + dt.timedelta(days=day, hours=15),
        )
    renewals.renew_subscriptions_if_needed(now=now)
    MembershipFactory(organization=organization, user=UserFactory(username="alice"))
    StaffFactory(username="support")
    subscription.refresh_from_db()
    return organization


def pages_of(organization):
    """Every page of the organization's billing, by name."""
    slug = organization.slug
    invoice = organization.invoices.order_by("-issued_at").first()
    number = organization.phone_numbers.first()
    method = organization.payment_methods.order_by("pk").last()
    starter = Plan.objects.get(code="starter-monthly")
    business = Plan.objects.get(code="business-monthly")
    return {
        "overview": reverse("billing:overview", args=[slug]),
        "plans": reverse("billing:plans", args=[slug]),
        "plans-annual": reverse("billing:plans", args=[slug]) + "?interval=year",
        "plan-downgrade": reverse("billing:plan_change", args=[slug, starter.pk]),
        "plan-upgrade": reverse("billing:plan_change", args=[slug, business.pk]),
        "cancel": reverse("billing:cancel", args=[slug]),
        "invoices": reverse("billing:invoices", args=[slug]),
        "invoice": reverse("billing:invoice", args=[slug, invoice.number]),
        "usage": reverse("usage:dashboard", args=[slug]),
        "employees": reverse("usage:employees", args=[slug]),
        "phone-numbers": reverse("usage:phone_numbers", args=[slug]),
        "number-release": reverse("usage:number_release", args=[slug, number.pk]),
        "payment-methods": reverse("payments:methods", args=[slug]),
        "method-edit": reverse("payments:method_edit", args=[slug, method.pk]),
        "method-remove": reverse("payments:method_remove", args=[slug, method.pk]),
    }


def look(page, screenshot, url, name, viewport):
    page.set_viewport_size(viewport)
    page.goto(url)
    screenshot(f"{'phone' if viewport is PHONE else 'desktop'}-{name}")
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    return widths, page.evaluate(ACTIONS_JS)


def assert_fits_a_phone(page, screenshot, url, name):
    _, on_desktop = look(page, screenshot, url, name, DESKTOP)
    (scroll_width, width), on_phone = look(page, screenshot, url, name, PHONE)

    assert scroll_width <= width, f"{name} scrolls sideways: {scroll_width} px in {width}"
    wanted = {action["name"] for action in on_desktop}
    reachable = {action["name"] for action in on_phone if action["onScreen"]}
    assert wanted, name
    assert wanted <= reachable, f"{name}: out of reach on a phone: {sorted(wanted - reachable)}"


def test_every_billing_page_fits_a_phone_with_its_actions_on_screen(page, screenshot, acme):
    sign_in(page, "alice")

    for name, url in pages_of(acme).items():
        assert_fits_a_phone(page, screenshot, url, name)


def test_the_staff_chooser_fits_a_phone(page, screenshot, acme):
    sign_in(page, "support")

    assert_fits_a_phone(page, screenshot, reverse("billing:home"), "staff-organizations")
