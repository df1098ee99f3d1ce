"""Reads of the catalog: the plans an organization is offered, side by side, and which
features it has now (its plan's, and those it is trying), each locked one with the cheapest
plan that unlocks it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from djmoney.money import Money

from billing.models import Feature, FeatureTrial, Organization, Plan, Subscription

# --- plan comparison -----------------------------------------------------------------------


@dataclass
class PlanOffer:
    plan: Plan
    is_current: bool = False
    annual_saving: Money | None = None
    annual_saving_percent: Decimal | None = None
    feature_codes: set[str] = field(default_factory=set)


@dataclass
class PlanComparison:
    interval: str
    offers: list[PlanOffer]
    features: list[Feature]
    current_plan: Plan | None


def _offered(organization: Organization) -> Q:
    return (Q(is_public=True) | Q(organization=organization)) & Q(
        is_available=True, price_currency=organization.currency
    )


def plans_offered(*, organization: Organization, with_features: bool = True) -> list[Plan]:
    """Plans this organization may choose: public ones and its own custom plans, in its
    currency; with their features read too, unless `with_features` is false."""
    plans = Plan.objects.filter(_offered(organization))
    return list(plans.prefetch_related("features") if with_features else plans)


def _live_subscriptions(organization: Organization) -> QuerySet[Subscription]:
    return Subscription.objects.filter(organization=organization).exclude(
        status=Subscription.Status.CANCELED
    )


def plan_comparison(*, organization: Organization, interval: str | None = None) -> PlanComparison:
    """Plans side by side for one billing interval (by default the organization's own, else
    monthly), the current plan marked (even a retired version), annual plans with what they
    save against twelve monthly payments. `current_plan` is the organization's plan whichever
    interval is shown."""
    # The offered plans and the current one in one query, so the page can afford the
    # usage costs beside them.
    plans = list(
        Plan.objects.annotate(
            is_current=Exists(_live_subscriptions(organization).filter(plan=OuterRef("pk"))),
            is_offered=ExpressionWrapper(_offered(organization), output_field=BooleanField()),
        )
        .filter(Q(is_offered=True) | Q(is_current=True))
        .prefetch_related("features")
    )
    current = next((plan for plan in plans if plan.is_current), None)
    if interval not in Plan.Interval.values:
        interval = current.interval if current else Plan.Interval.MONTH
    monthly_by_tier = {
        (plan.tier, plan.is_public): plan
        for plan in plans
        if plan.is_offered and plan.interval == Plan.Interval.MONTH
    }
    shown = [plan for plan in plans if plan.interval == interval]
    offers = []
    for plan in sorted(shown, key=lambda plan: (plan.rank, plan.price.amount)):
        offer = PlanOffer(
            plan=plan,
            is_current=plan.is_current,
            feature_codes={feature.code for feature in plan.features.all()},
        )
        monthly = monthly_by_tier.get((plan.tier, plan.is_public))
        if plan.interval == Plan.Interval.YEAR and monthly is not None:
            twelve_payments = monthly.price * 12
            offer.annual_saving = twelve_payments - plan.price
            offer.annual_saving_percent = (
                offer.annual_saving.amount / twelve_payments.amount * 100
            ).quantize(Decimal("1"))
        offers.append(offer)
    return PlanComparison(
        interval=interval,
        offers=offers,
        features=list(Feature.objects.all()),
        current_plan=current,
    )


# --- feature access -----------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureAccess:
    """The one answer to "may this organization use feature X now?": its live plan's features,
    and running trials of features that plan lacks."""

    plan_codes: frozenset[str] = frozenset()
    trials: Mapping[str, dt.datetime] = field(default_factory=dict)  # code: when it ends

    def has(self, code: str) -> bool:
        return code in self.plan_codes or code in self.trials

    def trial_ends(self, code: str) -> dt.datetime | None:
        return self.trials.get(code)

    def source(self, code: str) -> str | None:
        """`plan`, `trial`, or None when the feature is locked."""
        if code in self.plan_codes:
            return "plan"
        return "trial" if code in self.trials else None


def _features_with_access(*, organization: Organization, now: dt.datetime) -> QuerySet[Feature]:
    """Every feature, with `in_plan` (the live subscription's plan includes it; a canceled
    subscription gives nothing) and `trial_ends_at` (a trial running at `now`, half-open)."""
    return Feature.objects.annotate(
        in_plan=Exists(_live_subscriptions(organization).filter(plan__features=OuterRef("pk"))),
        trial_ends_at=Subquery(
            FeatureTrial.objects.filter(
                organization=organization,
                feature=OuterRef("pk"),
                starts_at__lte=now,
                ends_at__gt=now,
            )
            .order_by("-ends_at")
            .values("ends_at")[:1]
        ),
    )


def _access(features: Iterable[Feature]) -> FeatureAccess:
    features = list(features)
    return FeatureAccess(
        plan_codes=frozenset(feature.code for feature in features if feature.in_plan),
        trials={
            feature.code: feature.trial_ends_at
            for feature in features
            if feature.trial_ends_at is not None and not feature.in_plan
        },
    )


def feature_access_for(*, organization: Organization, now: dt.datetime) -> FeatureAccess:
    """One query, read every time: a plan change or a trial counts the moment it happens."""
    return _access(
        _features_with_access(organization=organization, now=now).filter(
            Q(in_plan=True) | Q(trial_ends_at__isnull=False)
        )
    )


def organization_has_feature(*, organization: Organization, code: str, now: dt.datetime) -> bool:
    return feature_access_for(organization=organization, now=now).has(code)


def _ranked_for(organization: Organization, plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """`plans` marked `in_current_interval` when the organization pays on that interval."""
    return plans.annotate(
        in_current_interval=Exists(
            _live_subscriptions(organization).filter(plan__interval=OuterRef("interval"))
        )
    )


def _cheapest(plans: Iterable[Plan]) -> Plan | None:
    """The cheapest of `plans` (marked by `_ranked_for`), on the organization's billing
    interval when one is there, monthly for an organization without a subscription."""
    return min(
        plans,
        key=lambda plan: (
            not plan.in_current_interval,
            plan.interval != Plan.Interval.MONTH,
            plan.monthly_equivalent.amount,
            plan.rank,
        ),
        default=None,
    )


def feature_upgrade_plan(*, organization: Organization, code: str) -> Plan | None:
    """The plan a locked feature names: the cheapest plan offered to the organization that
    includes it. One query."""
    return _cheapest(
        _ranked_for(organization, Plan.objects.filter(_offered(organization), features__code=code))
    )


@dataclass(frozen=True)
class FeatureStatus:
    feature: Feature
    source: str | None  # "plan", "trial", or None when locked
    trial_ends_at: dt.datetime | None
    # When the organization's plan lacks the feature: the cheapest offered plan that has it.
    upgrade_plan: Plan | None

    @property
    def enabled(self) -> bool:
        return self.source is not None


def _status(feature: Feature, access: FeatureAccess, upgrade_plan: Plan | None) -> FeatureStatus:
    return FeatureStatus(
        feature=feature,
        source=access.source(feature.code),
        trial_ends_at=access.trial_ends(feature.code),
        upgrade_plan=upgrade_plan,
    )


def feature_statuses(*, organization: Organization, now: dt.datetime) -> list[FeatureStatus]:
    """Every feature and how the organization has it, each locked one with the plan that
    unlocks it. Two queries."""
    offered = _ranked_for(organization, Plan.objects.filter(_offered(organization)))
    features = list(
        _features_with_access(organization=organization, now=now).prefetch_related(
            Prefetch("plans", queryset=offered, to_attr="offered_plans")
        )
    )
    access = _access(features)
    return [
        _status(feature, access, None if feature.in_plan else _cheapest(feature.offered_plans))
        for feature in features
    ]


def feature_status(
    *, organization: Organization, code: str, now: dt.datetime
) -> FeatureStatus | None:
    """One feature (None for an unknown code): one query, two when the plan lacks it."""
    feature = _features_with_access(organization=organization, now=now).filter(code=code).first()
    if feature is None:
        return None
    upgrade_plan = (
        None if feature.in_plan else feature_upgrade_plan(organization=organization, code=code)
    )
    return _status(feature, _access([feature]), upgrade_plan)
