"""The platform's features and the demo plan catalog, as data for `catalog_load`."""

from decimal import Decimal

ANNUAL_DISCOUNT = Decimal("0.15")

# (code, name, category, description), in the order the comparison table lists them.
FEATURES = [
    ("core_calling", "Core calling", "core", "AI employees that place and answer calls"),
    ("basic_reporting", "Basic reporting", "core", "Call logs and usage summaries"),
    ("integrations", "Integrations", "advanced", "Connect CRMs, calendars and help desks"),
    ("analytics_dashboards", "Analytics dashboards", "advanced", "Detailed call analytics"),
    ("workflow_automation", "Workflow automation", "advanced", "Trigger actions from calls"),
    ("multi_language", "Multi-language", "advanced", "AI employees that speak many languages"),
    ("white_labeling", "White-labeling", "premium", "Your brand instead of ours"),
    ("custom_branding", "Custom branding", "premium", "Logos and colours on every page"),
    ("advanced_security", "Advanced security", "premium", "SSO, IP allow-lists, data residency"),
    ("audit_log", "Audit log", "premium", "Who changed what, and when"),
    ("priority_support", "Priority support", "premium", "Faster answers from a named team"),
]

_CORE = ["core_calling", "basic_reporting"]
_PROFESSIONAL = [*_CORE, "integrations", "analytics_dashboards", "multi_language"]
_BUSINESS = [
    *_PROFESSIONAL,
    "workflow_automation",
    "custom_branding",
    "advanced_security",
    "audit_log",
    "priority_support",
]
_ENTERPRISE = [code for code, *_ in FEATURES]

# Monthly prices and allowances; each public plan also comes as an annual plan at 15% off.
# Professional and Business start a new organization's first subscription with a trial.
PUBLIC_PLANS = [
    {
        "code": "starter",
        "name": "Starter",
        "tier": "starter",
        "description": "Core calling for small teams getting started.",
        "monthly_price": Decimal("49.00"),
        "included_call_seconds": 18_000,
        "max_active_employees": 3,
        "max_phone_numbers": 2,
        "free_phone_numbers": 1,
        "storage_gb": 5,
        "api_calls_per_month": 10_000,
        "max_integrations": 1,
        "overage_policy": "block",
        "overage_rate_per_second": Decimal("0"),
        "overage_rate_per_gb": Decimal("0.50"),
        "overage_cap": None,
        "features": _CORE,
    },
    {
        "code": "professional",
        "name": "Professional",
        "tier": "professional",
        "description": "More capacity, integrations and analytics for growing teams.",
        "monthly_price": Decimal("199.00"),
        "included_call_seconds": 180_000,
        "max_active_employees": 15,
        "max_phone_numbers": 10,
        "free_phone_numbers": 3,
        "storage_gb": 50,
        "api_calls_per_month": 100_000,
        "max_integrations": 5,
        "overage_policy": "charge",
        "overage_rate_per_second": Decimal("0.004"),
        "overage_rate_per_gb": Decimal("0.25"),
        "overage_cap": None,
        "features": _PROFESSIONAL,
        "trial_days": 14,
    },
    {
        "code": "business",
        "name": "Business",
        "tier": "business",
        "description": "High allowances, automation and security for many teams.",
        "monthly_price": Decimal("799.00"),
        "included_call_seconds": 1_200_000,
        "max_active_employees": 50,
        "max_phone_numbers": 25,
        "free_phone_numbers": 10,
        "storage_gb": 250,
        "api_calls_per_month": 1_000_000,
        "max_integrations": None,
        "overage_policy": "charge",
        "overage_rate_per_second": Decimal("0.003"),
        "overage_rate_per_gb": Decimal("0.20"),
        "overage_cap": Decimal("1000.00"),
        "features": _BUSINESS,
        "trial_days": 14,
    },
]

# A custom plan negotiated with one organization (its slug), paid by invoice.
ENTERPRISE_EXAMPLE = {
    "code": "enterprise-initech",
    "name": "Enterprise (Initech)",
    "tier": "enterprise",
    "interval": "month",
    "description": "Negotiated terms: unlimited AI employees, volume call rate.",
    "price": Decimal("4500.00"),
    "included_call_seconds": 6_000_000,
    "max_active_employees": None,
    "max_phone_numbers": 200,
    "free_phone_numbers": 50,
    "storage_gb": None,
    "api_calls_per_month": None,
    "max_integrations": None,
    "overage_policy": "charge",
    "overage_rate_per_second": Decimal("0.002"),
    "overage_rate_per_gb": Decimal("0.10"),
    "overage_cap": None,
    "features": _ENTERPRISE,
    "organization_slug": "initech",
}
