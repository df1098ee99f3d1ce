"""Features: which the organization may use now, with the check the billing pages use."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.utils import timezone
from ninja import Field, Router, Schema

from billing.catalog.selectors import FeatureStatus, feature_status, feature_statuses
from billing.errors import BillingError, ErrorCode
from usage.api import lookups
from usage.api.answers import (
    answers,
)
from usage.api.inputs import PathText

router = Router(tags=["features"])


class FeatureOut(Schema):
    code: str
    name: str
    enabled: bool = Field(description="Whether the organization may use the feature now.")
    source: Literal["plan", "trial"] | None = Field(
        description="What gives it: the plan of the live subscription, or a trial granted "
        "by staff; null when locked."
    )
    trial_ends_at: dt.datetime | None = Field(description="When a trial ends (exclusive).")
    included_in_plan: str | None = Field(
        description="When the organization's plan lacks the feature: the code of the "
        "cheapest plan offered to it that includes it; null otherwise, or when none does."
    )


def _feature_out(status: FeatureStatus) -> FeatureOut:
    return FeatureOut(
        code=status.feature.code,
        name=status.feature.name,
        enabled=status.enabled,
        source=status.source,
        trial_ends_at=status.trial_ends_at,
        included_in_plan=status.upgrade_plan.code if status.upgrade_plan else None,
    )


@router.get(
    "orgs/{org}/features",
    **answers({200: list[FeatureOut]}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND,), body=False),
    summary="Every feature, enabled or not",
)
def list_features(request, org: PathText):
    """Gate the platform's own features with the check the billing pages use. Never cached:
    a plan change or a trial counts from the next request."""
    statuses = feature_statuses(organization=lookups.organization(org), now=timezone.now())
    return [_feature_out(status) for status in statuses]


@router.get(
    "orgs/{org}/features/{code}",
    **answers(
        {200: FeatureOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.UNKNOWN_FEATURE),
        body=False,
    ),
    summary="May the organization use this feature?",
)
def get_feature(request, org: PathText, code: PathText):
    """404 `unknown_feature` for a code that is not a feature."""
    status = feature_status(organization=lookups.organization(org), code=code, now=timezone.now())
    if status is None:
        raise BillingError(
            ErrorCode.UNKNOWN_FEATURE, f"There is no feature with the code {code!r}."
        )
    return _feature_out(status)
