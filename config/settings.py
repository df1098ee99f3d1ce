"""Settings, all read from the environment (see `.env.example` for every variable).

Without any variable set the project runs embedded: SQLite and the django-q2 ORM broker
under `var/`, e-mail written to files under `var/mail/`, and the sandbox payment gateway.
"""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "development-only-key-never-used-when-debug-is-off"  # noqa: S105
# Previous keys, still accepted while a rotation settles: sessions, password reset links
# and the tasks queued before the rotation (see config/brokers.py).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "djmoney",
    "django_q",
    "ninja",
    "simple_history",
    "sequences",
    "djstripe",
    "billing",
    "usage",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing.security.middleware.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.middleware.common.CommonMiddleware",
    # The browser's own (below), skipped by the platform API: it answers a bearer token.
    "billing.security.middleware.BrowserMiddleware",
]
BROWSER_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "billing.security.middleware.StaffIdleTimeoutMiddleware",
    "billing.security.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]
API_PATH_PREFIX = "/api/"
# The admin, axes and the deploy checks look for their middleware (sessions, sign-in,
# messages, CSRF, framing) in MIDDLEWARE; it is in BROWSER_MIDDLEWARE, run for every page
# but the API's (tests/billing/security/test_browser_middleware.py proves pages keep them).
SILENCED_SYSTEM_CHECKS = [
    "admin.E408",
    "admin.E409",
    "admin.E410",
    "axes.W002",
    "security.W002",
    "security.W003",
]

if not DEBUG:
    # Served by gunicorn in production; in development runserver serves static files.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if not env.str("DATABASE_URL", default=""):
    # SQLite creates the file, not its folder: a fresh clone has no var/ yet.
    VAR_DIR.mkdir(exist_ok=True)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the qcluster read while one of them writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
    }
else:
    # Django's backend, with fewer health checks of a kept connection (see its module).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["CONN_HEALTH_CHECK_SECONDS"] = env.int(
        "CONN_HEALTH_CHECK_SECONDS", default=5
    )
    # Statements run on a server-bound cursor (call authorization's) are prepared on the
    # first run on a connection and keep their plan; the ORM binds on the client and is never
    # prepared. Off (false) behind a pooler that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        0 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "billing:home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes), on every password sign-in (`/accounts/login/` and
# `/admin/login/`): after LOGIN_FAILURE_LIMIT failures for one username from one address,
# that combination is refused, even with the right password, for LOGIN_COOLOFF_MINUTES.
# Each failure is logged (logger `axes`) and kept in the admin's "Access attempts".
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "billing.security.views.locked_out"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_CLIENT_IP_CALLABLE = "billing.security.selectors.client_address"
# Failures are logged as warnings naming the username and the address (never the password).
AXES_SENSITIVE_PARAMETERS = []
# How many proxies in front of the web server append to X-Forwarded-For: the address
# throttling counts is the one the outermost of them saw. 0: the connection's own address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Two-factor authentication (django-otp, TOTP authenticator apps and recovery codes). Staff
# must verify a code before any page while this is on; organization users may turn it on
# for themselves on /accounts/security/.
OTP_REQUIRED_FOR_STAFF = env.bool("OTP_REQUIRED_FOR_STAFF", default=True)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="AI Employees Billing")
# Staff sessions end after this many minutes without a request (sliding); organization
# users keep Django's ordinary session.
STAFF_IDLE_TIMEOUT_MINUTES = env.int("STAFF_IDLE_TIMEOUT_MINUTES", default=30)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Not a filemail:// URL: django-environ reads its path as relative to the working folder.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
# Where people reach these pages: e-mails link to them with absolute addresses.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# E-mails are sent by the task queue; a send that fails (the mail server is down) is tried
# again after each of these waits, in minutes, then given up and logged.
EMAIL_RETRY_MINUTES = env.list("EMAIL_RETRY_MINUTES", cast=int, default=[1, 5, 30, 120])

# django-money: the currencies an organization may bill in.
CURRENCIES = ("USD", "EUR", "GBP")
DEFAULT_CURRENCY = "USD"

# Every row lock is checked against the lock order of billing/locks.py, and one taken out
# of order raises: on in development (and always in the test suite), off in production.
BILLING_CHECK_LOCK_ORDER = env.bool("BILLING_CHECK_LOCK_ORDER", default=DEBUG)

# Who issues invoices, as printed on them.
BILLING_SELLER = {
    "name": env.str("BILLING_SELLER_NAME", default="AI Employees Inc."),
    "address": env.str(
        "BILLING_SELLER_ADDRESS", default="100 Market Street, San Francisco, CA 94105, US"
    ),
    "tax_id": env.str("BILLING_SELLER_TAX_ID", default="US 12-3456789"),
    "email": env.str("BILLING_SELLER_EMAIL", default="billing@example.com"),
}

# Task queue: the ORM broker on the project's database, or Redis when REDIS_URL is set.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "billing",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 600,
    "retry": 900,
    "max_attempts": 1,
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    Q_CLUSTER["broker_class"] = "config.brokers.Redis"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "config.brokers.ORM"

# Payments: Stripe when a secret key is configured, otherwise the sandbox gateway.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
PAYMENT_GATEWAY = "stripe" if STRIPE_SECRET_KEY else "sandbox"
# dj-stripe mirrors Stripe's objects. Every call names this API version, the one dj-stripe
# 2.11's models are written for; the webhook endpoint on Stripe's side is created with it.
STRIPE_API_VERSION = "2026-05-27.dahlia"
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
# Customers are linked to organizations explicitly (payments.StripeCustomer), not through
# a subscriber model: no metadata key of dj-stripe's is written to or read from Stripe.
DJSTRIPE_SUBSCRIBER_CUSTOMER_KEY = ""
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# Days webhook deliveries and Stripe events are kept in the mirror before the nightly purge.
STRIPE_EVENT_RETENTION_DAYS = env.int("STRIPE_EVENT_RETENTION_DAYS", default=90)
# Days of payments and refunds the daily reconciliation compares with Stripe's.
STRIPE_RECONCILIATION_DAYS = env.int("STRIPE_RECONCILIATION_DAYS", default=35)
# Dunning: days after the first failed charge on which it is retried; after the last
# failure the subscription is suspended.
PAYMENT_RETRY_DAYS = env.list("PAYMENT_RETRY_DAYS", cast=int, default=[1, 3, 5, 7])

# Content-Security-Policy (django-csp) on every response: scripts, styles and images from
# this site only; an inline <style> or <script> needs the request's nonce. Stripe's script
# and frames are allowed for its Payment Element.
STRIPE_JS = "https://js.stripe.com"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, STRIPE_JS],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF, "https://api.stripe.com"],
        "frame-src": [STRIPE_JS, "https://hooks.stripe.com"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Permissions-Policy (django-permissions-policy): browser features no page here uses are
# off; payments only for this site and Stripe's frames.
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": ["self", STRIPE_JS],
    "usb": [],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per queued task is noise; failures are still logged.
        "django-q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
        "weasyprint": {"level": "WARNING"},
        # Sign-in failures and lockouts are warnings; each success would be an INFO line.
        "axes": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Plan changes: an upgrade's prorations go on the next invoice, or on an invoice of their
# own at once when this is true.
BILLING_INVOICE_PRORATIONS_IMMEDIATELY = env.bool(
    "BILLING_INVOICE_PRORATIONS_IMMEDIATELY", default=False
)
# Trials: the billing contacts are reminded this many days before a trial ends.
TRIAL_REMINDER_DAYS_BEFORE_END = env.int("TRIAL_REMINDER_DAYS_BEFORE_END", default=3)
# After a subscription ends, usage data and AI employees are kept this many days (the
# organization may resubscribe and find them), then purged. Invoices and payments are kept.
DATA_RETENTION_DAYS = env.int("DATA_RETENTION_DAYS", default=60)
# A renewal run longer than this is e-mailed to the superusers (so is one that fails).
RENEWAL_SLOW_SECONDS = env.int("RENEWAL_SLOW_SECONDS", default=600)
# Seconds a process keeps a service token it read: a token revoked in another process is
# still accepted here for at most this long. 0 reads the token on every request.
SERVICE_TOKEN_CACHE_SECONDS = env.int("SERVICE_TOKEN_CACHE_SECONDS", default=10)

# Pay by invoice: organizations on `invoice` terms get open invoices due after their net
# days and pay them by bank transfer to the account below. Their billing contacts are
# reminded before the due date and on the given days after it; once an invoice is
# `INVOICE_GRACE_DAYS` overdue the subscription is suspended until the transfer is recorded.
INVOICE_REMINDER_DAYS_BEFORE_DUE = env.int("INVOICE_REMINDER_DAYS_BEFORE_DUE", default=7)
INVOICE_OVERDUE_REMINDER_DAYS = env.list("INVOICE_OVERDUE_REMINDER_DAYS", cast=int, default=[1, 7])
INVOICE_GRACE_DAYS = env.int("INVOICE_GRACE_DAYS", default=14)
# Printed on open invoices and reminders; `{invoice_number}` in the reference is replaced.
BANK_TRANSFER_INSTRUCTIONS = {
    "bank_name": env.str("BANK_TRANSFER_BANK_NAME", default="Demo Bank"),
    "account_holder": env.str("BANK_TRANSFER_ACCOUNT_HOLDER", default=BILLING_SELLER["name"]),
    "account": env.str("BANK_TRANSFER_ACCOUNT", default="GB82 WEST 1234 5698 7654 32"),
    "swift": env.str("BANK_TRANSFER_SWIFT", default="DEMOGB2L"),
    "reference": env.str("BANK_TRANSFER_REFERENCE", default="{invoice_number}"),
}

# Notifications: webhook deliveries that fail are tried again after each of these waits, in
# minutes, then given up (the delivery log shows each attempt).
WEBHOOK_RETRY_MINUTES = env.list("WEBHOOK_RETRY_MINUTES", cast=int, default=[1, 5, 30, 120, 720])
# After a signing secret is rotated, deliveries are signed with the old one too this long.
WEBHOOK_SECRET_GRACE_HOURS = env.int("WEBHOOK_SECRET_GRACE_HOURS", default=24)
# Development and tests only: let webhooks reach a receiver on this machine (loopback).
WEBHOOK_ALLOW_LOOPBACK = env.bool("WEBHOOK_ALLOW_LOOPBACK", default=False)
# Certificate authorities webhook receivers are verified against. Default: certifi's bundle.
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")
# Usage alerts: the thresholds, in percent of each allowance (and of the overage cap), every
# organization starts with; each can be switched off and others added on its settings page.
USAGE_ALERT_DEFAULT_PERCENTS = env.list(
    "USAGE_ALERT_DEFAULT_PERCENTS", cast=int, default=[50, 75, 90, 100]
)
# Budget alerts: percents of a monthly budget at which the actual spend alerts, once each a
# month (the forecast passing the budget alerts too).
BUDGET_ALERT_PERCENTS = env.list("BUDGET_ALERT_PERCENTS", cast=int, default=[80, 100])
# Referral credits, in each organization's own currency, given once the referred
# organization pays its first invoice: to the organization that referred it, and to it.
REFERRAL_CREDIT_REFERRER = Decimal(env.str("REFERRAL_CREDIT_REFERRER", default="50"))
REFERRAL_CREDIT_REFERRED = Decimal(env.str("REFERRAL_CREDIT_REFERRED", default="50"))
# Renewal reminders: days before a renewal when the billing contacts are told what it costs.
RENEWAL_REMINDER_DAYS_MONTHLY = env.int("RENEWAL_REMINDER_DAYS_MONTHLY", default=7)
RENEWAL_REMINDER_DAYS_ANNUAL = env.int("RENEWAL_REMINDER_DAYS_ANNUAL", default=30)

# Billing requests: the response target, in business hours (weekdays, in the organization's
# timezone); organizations whose plan has the `priority_support` feature get the shorter one.
BILLING_SUPPORT_RESPONSE_HOURS = env.int("BILLING_SUPPORT_RESPONSE_HOURS", default=24)
BILLING_SUPPORT_PRIORITY_RESPONSE_HOURS = env.int(
    "BILLING_SUPPORT_PRIORITY_RESPONSE_HOURS", default=4
)
# Staff in this group are e-mailed when a request passes its target unanswered.
BILLING_SUPPORT_SUPERVISORS_GROUP = env.str(
    "BILLING_SUPPORT_SUPERVISORS_GROUP", default="Billing supervisors"
)
# Disputes of calls worth at most this much (in the organization's currency) are approved at
# once with a credit note to the balance; 0 turns the rule off.
BILLING_DISPUTE_AUTO_APPROVE_UP_TO = Decimal(
    env.str("BILLING_DISPUTE_AUTO_APPROVE_UP_TO", default="0")
)
# While a dispute on an invoice is open, its payment retries and the suspension they would
# lead to wait; they resume once the dispute is decided.
BILLING_DISPUTE_PAUSES_DUNNING = env.bool("BILLING_DISPUTE_PAUSES_DUNNING", default=True)
# Attachments to billing requests: PDF, PNG or JPEG, at most this many megabytes.
BILLING_REQUEST_ATTACHMENT_MAX_MB = env.int("BILLING_REQUEST_ATTACHMENT_MAX_MB", default=5)
