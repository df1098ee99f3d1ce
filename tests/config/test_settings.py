import uuid

from tests.config.management import ROOT, manage

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x7#kq2!vL9p@fR4zT8wN1mB6yH3cJ5dS0gA-uE_oI^rW&tY*qZ(eX)vU+nM=jK",
    "ALLOWED_HOSTS": "billing.example.com",
    "DATABASE_URL": "sqlite:///:memory:",
}


def test_deploy_checks_are_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": ""})

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_mail_is_written_to_var_mail_whatever_the_working_folder(tmp_path):
    subject = f"Where mail goes {uuid.uuid4().hex}"
    send = (
        "from django.core.mail import send_mail; "
        f"send_mail({subject!r}, 'Hello.', 'billing@localhost', ['admin@example.com'])"
    )

    result = manage("shell", "--no-imports", "-c", send, cwd=tmp_path, DEBUG="true", EMAIL_URL="")

    written = [path for path in (ROOT / "var" / "mail").glob("*") if subject in path.read_text()]
    for path in written:
        path.unlink()
    assert result.returncode == 0, result.stderr
    assert len(written) == 1
    assert list(tmp_path.iterdir()) == []
