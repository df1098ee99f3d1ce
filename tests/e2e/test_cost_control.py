"""The cost control pages in the browser: they fit a phone with their actions on screen, and
the charts are drawn without anything the Content-Security-Policy refuses."""

import pytest
from django.urls import reverse

from tests.e2e.test_billing_pages import sign_in
from tests.e2e.test_narrow_screens import acme, assert_fits_a_phone  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_cost_pages_fit_a_phone_without_a_policy_violation(
    page,
    screenshot,
    csp_violations,
    acme,  # noqa: F811 - the fixture imported above
):
    sign_in(page, "alice")
    slug = acme.slug
    month = acme.cost_shares.order_by("-month").first().month

    for name, url in {
        "overview": reverse("billing:overview", args=[slug]),
        "upcoming-invoice": reverse("usage:upcoming", args=[slug]),
        "costs": reverse("usage:costs", args=[slug]) + f"?month={month:%Y-%m}",
        "costs-history": reverse("usage:costs_history", args=[slug]),
    }.items():
        assert_fits_a_phone(page, screenshot, url, name)

    assert page.locator("figure.chart-columns svg").count() == 2
    assert csp_violations == []
