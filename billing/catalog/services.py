"""Writes to the catalog: loading the platform's features and plans, publishing a new version
of a plan, and letting an organization try a feature its plan lacks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing import locks
from billing.accounts.services import Actor, staff_action_begin
from billing.catalog import definitions
from billing.errors import BillingError, ErrorCode
from billing.models import Feature, FeatureTrial, Organization, Plan
from billing.money import round_money


@transaction.atomic
def catalog_load() -> list[Plan]:
    """Create the features and the public demo plans that are missing. Safe to run again."""
    for position, (code, name, category, description) in enumerate(definitions.FEATURES):
        Feature.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "category": category,
                "description": description,
                "position": position,
            },
        )
    plans = []
    for spec in definitions.PUBLIC_PLANS:
        spec = dict(spec)
        monthly_price = spec.pop("monthly_price")
        annual_price = monthly_price * 12 * (1 - definitions.ANNUAL_DISCOUNT)
        code = spec.pop("code")
        name = spec.pop("name")
        plans.append(
            plan_ensure(
                code=f"{code}-monthly", name=name, interval="month", price=monthly_price, **spec
            )
        )
        plans.append(
            plan_ensure(
                code=f"{code}-annual", name=name, interval="year", price=annual_price, **spec
            )
        )
    return plans


def plan_ensure(
    *,
    code: str,
    price: Decimal,
    features: list[str],
    currency: str = "USD",
    organization: Organization | None = None,
    overage_cap: Decimal | None = None,
    **terms: Any,
) -> Plan:
    """The latest version of plan `code`, created with these terms if it does not exist."""
    existing = Plan.objects.filter(code=code).order_by("-version").first()
    if existing is not None:
        return existing
    plan = Plan(
        code=code,
        price=round_money(Money(price, currency)),
        overage_rate_per_second=Money(terms.pop("overage_rate_per_second"), currency),
        overage_rate_per_gb=Money(terms.pop("overage_rate_per_gb"), currency),
        overage_cap=Money(overage_cap, currency) if overage_cap is not None else None,
        is_public=organization is None,
        organization=organization,
        **terms,
    )
    plan.full_clean()
    plan.save()
    plan.features.set(Feature.objects.filter(code__in=features))
    return plan


@transaction.atomic
def plan_new_version(*, plan: Plan, changes: dict[str, Any], actor: Actor = None) -> Plan:
    """Publish a new version of `plan` with `changes` to its terms.

    The old version stops being offered; its subscribers keep it until they change plans.
    """
    staff_action_begin(
        actor=actor,
        permission="billing.add_plan",
        action="Publishing a plan version",
        subject=plan,
        organization_id=plan.organization_id,
        changes=changes,
    )
    latest = locks.plan_lock().filter(code=plan.code).order_by("-version").first()
    new = Plan.objects.get(pk=plan.pk)
    features = list(plan.features.all())
    new.pk = None
    new.version = latest.version + 1
    new.is_available = True
    for name, value in changes.items():
        setattr(new, name, value)
    new.full_clean()
    new.save()
    new.features.set(features)
    for retired in Plan.objects.filter(code=plan.code, is_available=True).exclude(pk=new.pk):
        retired.is_available = False
        retired._change_reason = f"Replaced by version {new.version}"
        retired.save(update_fields=["is_available"])
    return new


@transaction.atomic
def feature_trial_grant(
    *,
    organization: Organization,
    feature: Feature,
    days: int,
    note: str = "",
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> FeatureTrial:
    """Let an organization try one feature its plan does not include, for `days` days."""
    staff_action_begin(
        actor=actor,
        permission="billing.add_featuretrial",
        action="Granting a feature trial",
        subject=organization,
        organization_id=organization.pk,
        reason=note,
        changes={"feature": feature.code, "days": days},
    )
    now = now or timezone.now()
    if days < 1:
        raise BillingError(ErrorCode.INVALID_TRIAL_LENGTH)
    if FeatureTrial.objects.filter(
        organization=organization, feature=feature, starts_at__lte=now, ends_at__gt=now
    ).exists():
        raise BillingError(
            ErrorCode.FEATURE_TRIAL_ACTIVE, f"{organization} is already trying {feature.name}."
        )
    return FeatureTrial.objects.create(
        organization=organization,
        feature=feature,
        starts_at=now,
        ends_at=now + dt.timedelta(days=days),
        note=note,
        granted_by=actor,
        created_at=now,
    )
