from http import HTTPStatus
from pathlib import Path

import pytest

from billing.errors import BillingError, ErrorCode

README = Path(__file__).resolve().parents[2] / "README.md"
STATUSES = {
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.NOT_FOUND,
    HTTPStatus.CONFLICT,
    HTTPStatus.UNPROCESSABLE_ENTITY,
}


def readme_table() -> str:
    """The README's list of error codes, as the registry has them."""
    rows = [f"| `{code}` | {int(code.status)} | {code.message} |" for code in ErrorCode]
    return "\n".join(["| code | status | message |", "| --- | --- | --- |", *rows])


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_has_a_message_and_one_of_the_api_statuses(code):
    assert code.message.strip() and code.message.endswith(".")
    assert code.status in STATUSES


def test_a_code_is_its_string():
    assert ErrorCode.SAME_PLAN == "same_plan"
    assert ErrorCode("same_plan") is ErrorCode.SAME_PLAN
    assert {"same_plan": "found"}[ErrorCode.SAME_PLAN] == "found"


def test_a_refusal_carries_the_default_message_unless_it_says_more():
    default = BillingError(ErrorCode.NOT_CANCELING)
    specific = BillingError(ErrorCode.SAME_PLAN, "Already on Growth.", plan="growth")

    assert (default.code, default.message, default.status) == (
        "not_canceling",
        "The subscription is not set to end.",
        HTTPStatus.CONFLICT,
    )
    assert (specific.message, specific.details) == ("Already on Growth.", {"plan": "growth"})


@pytest.mark.parametrize("code", ["made_up", "same_plan"])
def test_only_a_registered_code_can_be_raised(code):
    with pytest.raises(TypeError, match="not a registered ErrorCode"):
        raise BillingError(code, "Refused.")


def test_the_readme_lists_every_code_with_its_status():
    assert readme_table() in README.read_text(), (
        "README.md's table of error codes is out of date; it reads:\n" + readme_table()
    )
