import pytest
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_demo_totp_code_prints_no_code_but_the_demo_one(now):
    TOTPDevice.objects.create(user=UserFactory(is_staff=True), name="Phone", confirmed=True)

    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_totp_code")


def test_load_catalog(capsys):
    call_command("load_catalog")

    assert "6 public plans" in capsys.readouterr().out
