"""Two-factor authentication: required for staff before any page, optional for
organization users, with recovery codes each usable once."""

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

VERIFY = reverse("security:verify")
SETUP = reverse("security:setup")
ACCOUNT = reverse("security:account")


def code_of(device, *, at: dt.datetime) -> str:
    """What the authenticator app shows at that moment."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = at.timestamp()
    return f"{totp.token():0{device.digits}d}"


def sign_in_with_password(client, username, *, url="/accounts/login/", next_url=""):
    response = client.post(url, {"username": username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302, "the password was accepted"
    return response


@pytest.fixture
def support():
    return UserFactory(username="support", is_staff=True, is_superuser=True)


@pytest.fixture
def authenticator(support):
    return TOTPDevice.objects.create(user=support, name="Authenticator app", confirmed=True)


@pytest.fixture
def acme_admin():
    organization = OrganizationFactory(slug="acme")
    return MembershipFactory(organization=organization, user=UserFactory(username="alice")).user


# --- staff --------------------------------------------------------------------------------


def test_staff_without_an_authenticator_are_led_to_set_one_up_before_the_admin(
    client, support, now
):
    sign_in_with_password(client, "support", url="/admin/login/", next_url="/admin/")

    to_code = client.get("/admin/")
    assert to_code.status_code == 302
    assert to_code.url == f"{VERIFY}?next=/admin/"
    to_setup = client.get(to_code.url)
    assert to_setup.url == f"{SETUP}?next=%2Fadmin%2F"

    page = client.get(to_setup.url).content.decode()
    device = TOTPDevice.objects.get(user=support, confirmed=False)
    assert "<svg" in page  # the QR code
    assert "otpauth://totp/AI%20Employees%20Billing%3Asupport?secret=" in page
    secret = re.search(r'aria-label="Secret key">([A-Z2-7 ]+)<', page)[1]
    assert secret.replace(" ", "") in device.config_url

    wrong = client.post(to_setup.url, {"code": "000000", "next": "/admin/"})
    assert "not the one your authenticator app shows" in wrong.content.decode()
    assert client.get("/admin/").status_code == 302

    later = now + dt.timedelta(seconds=5)  # each wrong code makes the next try wait
    with time_machine.travel(later, tick=False):
        confirmed = client.post(
            to_setup.url, {"code": code_of(device, at=later), "next": "/admin/"}
        )
        codes_page = client.get(confirmed.url).content.decode()
        codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", codes_page)
        assert len(codes) == 10
        assert "only time they are shown" in codes_page
        assert client.get("/admin/").status_code == 200


def test_the_recovery_codes_are_shown_once(client, support, now):
    sign_in_with_password(client, "support")
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=support)
    confirmed = client.post(SETUP, {"code": code_of(device, at=now)})

    assert client.get(confirmed.url).status_code == 200
    assert client.get(confirmed.url).url == ACCOUNT


def test_staff_with_an_authenticator_give_its_code_at_each_sign_in(
    client, support, authenticator, now
):
    sign_in_with_password(client, "support", url="/admin/login/", next_url="/admin/")
    assert client.get("/admin/").url == f"{VERIFY}?next=/admin/"

    wrong = client.post(VERIFY, {"code": "000000", "next": "/admin/"})
    assert "That code is not right" in wrong.content.decode()
    assert client.get("/admin/").status_code == 302

    soon = now + dt.timedelta(seconds=5)  # each wrong code makes the next try wait
    with time_machine.travel(soon, tick=False):
        right = client.post(VERIFY, {"code": code_of(authenticator, at=soon), "next": "/admin/"})
        assert right.url == "/admin/"
        assert client.get("/admin/").status_code == 200

    client.logout()
    later = now + dt.timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        sign_in_with_password(client, "support")
        assert client.get("/admin/").status_code == 302
        client.post(VERIFY, {"code": code_of(authenticator, at=later)})
        assert client.get("/admin/").status_code == 200


def test_staff_reach_no_billing_page_either_before_the_code(client, support, authenticator):
    sign_in_with_password(client, "support")

    response = client.get("/billing/")

    assert response.url == f"{VERIFY}?next=/billing/"


def test_a_code_is_used_once(client, support, authenticator, now):
    code = code_of(authenticator, at=now)
    sign_in_with_password(client, "support")
    client.post(VERIFY, {"code": code})
    client.logout()

    sign_in_with_password(client, "support")
    client.post(VERIFY, {"code": code})

    assert client.get("/admin/").status_code == 302


def test_a_password_alone_cannot_replace_the_authenticator(client, support, authenticator):
    sign_in_with_password(client, "support")

    response = client.get(SETUP)

    assert response.url.startswith(VERIFY)
    assert not TOTPDevice.objects.filter(user=support, confirmed=False).exists()


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(client, support, now):
    sign_in_with_password(client, "support")
    client.get(SETUP)
    confirmed = client.post(SETUP, {"code": code_of(TOTPDevice.objects.get(user=support), at=now)})
    codes = re.findall(r"<code>([a-z2-7]+)</code>", client.get(confirmed.url).content.decode())
    client.logout()

    sign_in_with_password(client, "support")
    used = client.post(VERIFY, {"code": codes[0].upper()}, follow=True)
    assert "You used a recovery code: 9 left" in used.content.decode()
    assert client.get("/admin/").status_code == 200
    client.logout()

    sign_in_with_password(client, "support")
    client.post(VERIFY, {"code": codes[0]})
    assert client.get("/admin/").status_code == 302


def test_new_recovery_codes_replace_the_old_ones(client, support, now):
    sign_in_with_password(client, "support")
    client.get(SETUP)
    confirmed = client.post(SETUP, {"code": code_of(TOTPDevice.objects.get(user=support), at=now)})
    old = re.findall(r"<code>([a-z2-7]+)</code>", client.get(confirmed.url).content.decode())

    renewed = client.post(reverse("security:recovery_codes"))
    new = re.findall(r"<code>([a-z2-7]+)</code>", client.get(renewed.url).content.decode())
    client.logout()
    sign_in_with_password(client, "support")
    client.post(VERIFY, {"code": old[0]})

    assert len(new) == 10 and not set(new) & set(old)
    assert client.get("/admin/").status_code == 302
    with time_machine.travel(now + dt.timedelta(seconds=5), tick=False):
        client.post(VERIFY, {"code": new[0]})
        assert client.get("/admin/").status_code == 200


def test_staff_cannot_turn_it_off(client, support, authenticator, now):
    sign_in_with_password(client, "support")
    client.post(VERIFY, {"code": code_of(authenticator, at=now)})

    response = client.post(reverse("security:disable"), {"code": "whatever"}, follow=True)

    assert "Staff accounts need two-factor authentication" in response.content.decode()
    assert TOTPDevice.objects.filter(user=support).exists()


def test_without_the_requirement_staff_sign_in_with_a_password(client, support, settings):
    settings.OTP_REQUIRED_FOR_STAFF = False

    sign_in_with_password(client, "support", url="/admin/login/", next_url="/admin/")

    assert client.get("/admin/").status_code == 200


def test_a_next_address_elsewhere_is_not_followed(client, support, authenticator, now):
    sign_in_with_password(client, "support")

    response = client.post(
        VERIFY, {"code": code_of(authenticator, at=now), "next": "https://evil.example/"}
    )

    assert response.url == reverse("billing:home")


# --- organization users -------------------------------------------------------------------


def test_an_organization_admin_signs_in_with_a_password_until_they_turn_it_on(
    client, acme_admin, now
):
    sign_in_with_password(client, "alice")
    assert client.get("/billing/acme/").status_code == 200
    assert "Off" in client.get(ACCOUNT).content.decode()

    turn_on = client.get(ACCOUNT).content.decode()
    assert f'href="{SETUP}?next={ACCOUNT}"' in turn_on
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=acme_admin)
    confirmed = client.post(SETUP, {"code": code_of(device, at=now), "next": ACCOUNT})
    assert client.get(confirmed.url).status_code == 200
    assert "On" in client.get(ACCOUNT).content.decode()
    client.logout()

    later = now + dt.timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        sign_in_with_password(client, "alice")
        assert client.get("/billing/acme/").url == f"{VERIFY}?next=/billing/acme/"
        client.post(VERIFY, {"code": code_of(device, at=later)})
        assert client.get("/billing/acme/").status_code == 200


def test_an_organization_admin_turns_it_off_with_a_current_code(client, acme_admin, now):
    device = TOTPDevice.objects.create(user=acme_admin, name="Authenticator app", confirmed=True)
    sign_in_with_password(client, "alice")
    client.post(VERIFY, {"code": code_of(device, at=now)})

    with time_machine.travel(now + dt.timedelta(minutes=1), tick=False):
        refused = client.post(reverse("security:disable"), {"code": "000000"}, follow=True)
        assert "still on" in refused.content.decode()
    later = now + dt.timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        turned_off = client.post(
            reverse("security:disable"), {"code": code_of(device, at=later)}, follow=True
        )
        assert "Two-factor authentication is off" in turned_off.content.decode()
    client.logout()

    sign_in_with_password(client, "alice")
    assert client.get("/billing/acme/").status_code == 200


def test_the_account_page_is_linked_from_every_page(client, acme_admin):
    sign_in_with_password(client, "alice")

    page = client.get("/billing/acme/").content.decode()

    assert f'href="{ACCOUNT}"' in page
