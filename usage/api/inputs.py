"""What every request carries in: bodies and path parameters, no text holding NUL, and
the field types several endpoints share."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Field
from pydantic import BaseModel, BeforeValidator, StringConstraints, field_validator
from pydantic_core import PydanticCustomError


def _refuse_nul(value):
    """PostgreSQL text cannot hold the NUL character: refused as bad input, where it comes
    in, rather than failing at the database."""
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError(
            "nul_character", "Text cannot contain the NUL character (U+0000)."
        )
    return value


class Input(BaseModel):
    """Every request body: no text field may hold NUL. A plain pydantic model, not a ninja
    `Schema`: that one reads each field of each object through a getter made for model
    instances, which a JSON body does not need, and a batch of 1,000 calls pays for."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        return _refuse_nul(value)


# A text path parameter, held to the same rule as the bodies.
PathText = Annotated[str, BeforeValidator(_refuse_nul)]

# A row's id: a positive 64-bit integer (the database's largest).
Id = Annotated[int, Field(gt=0, le=2**63 - 1)]
CallId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Direction = Literal["inbound", "outbound"]
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
