"""Reads of the payments app for pages: payment methods, payment history, the past-due
banner. A fixed number of queries each, whatever the data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Q
from djmoney.money import Money

from billing.models import Invoice, Organization, Subscription
from billing.support import selectors as support_selectors
from payments.gateways import TEST_BANK_ACCOUNTS, TEST_CARDS, decline_message
from payments.models import Collection, PaymentAttempt, PaymentMethod

HISTORY_PAGE_SIZE = 25


def _live_methods(organization: Organization):
    return PaymentMethod.objects.filter(organization=organization, removed_at__isnull=True)


@dataclass(frozen=True)
class MethodRow:
    method: PaymentMethod
    is_expired: bool


@dataclass(frozen=True)
class MethodsOnFile:
    """The default first, then the backups in the order they are tried."""

    default: MethodRow | None
    backups: list[MethodRow]

    @property
    def rows(self) -> list[MethodRow]:
        return ([self.default] if self.default else []) + self.backups

    def order_moving(self, method_id: int, step: int) -> list[int] | None:
        """Every method in the order tried, with one backup swapped with its neighbour
        `step` away; None if it has no neighbour there. The default stays first."""
        backups = [row.method.pk for row in self.backups]
        position = backups.index(method_id) if method_id in backups else -1
        neighbour = position + step
        if position < 0 or not 0 <= neighbour < len(backups):
            return None
        backups[position], backups[neighbour] = backups[neighbour], backups[position]
        return ([self.default.method.pk] if self.default else []) + backups


def methods_on_file(*, organization: Organization, today: dt.date) -> MethodsOnFile:
    rows = [
        MethodRow(method, is_expired=_expired(method, today))
        for method in _live_methods(organization).order_by("-is_default", "priority", "pk")
    ]
    if rows and rows[0].method.is_default:
        return MethodsOnFile(default=rows[0], backups=rows[1:])
    return MethodsOnFile(default=None, backups=rows)


def default_method(*, organization: Organization, today: dt.date) -> MethodRow | None:
    """The method charged first, if the organization has named one."""
    method = _live_methods(organization).filter(is_default=True).first()
    return MethodRow(method, is_expired=_expired(method, today)) if method else None


def _expired(method: PaymentMethod, today: dt.date) -> bool:
    # A card works until the last day of its expiry month.
    return bool(method.exp_year) and (method.exp_year, method.exp_month) < (today.year, today.month)


def payment_method_for(*, organization: Organization, method_id: int) -> PaymentMethod | None:
    """The organization's own live method: another organization's id finds nothing."""
    return _live_methods(organization).filter(pk=method_id).first()


def payment_history(*, organization: Organization, page_number: str | None) -> Page:
    """Every try to collect the organization's invoices, newest first, a page at a time."""
    attempts = (
        PaymentAttempt.objects.filter(invoice__organization=organization)
        .select_related("invoice", "payment_method")
        .order_by("-attempted_at", "-pk")
    )
    return Paginator(attempts, HISTORY_PAGE_SIZE).get_page(page_number)


def collection_failure_at(*, invoice: Invoice, attempted_at: dt.datetime) -> str:
    """Why the collection round started at `attempted_at` failed, as the customer is told."""
    attempt = (
        invoice.payment_attempts.filter(
            attempted_at=attempted_at, status=PaymentAttempt.Status.FAILED
        )
        .order_by("-pk")
        .first()
    )
    if attempt is None:
        return "No payment method on file: add one, then pay again."
    return attempt.failure_message or decline_message(attempt.failure_code)


# --- what is owed, and what it does to the service ------------------------------------------


def invoice_suspends_at(*, invoice: Invoice) -> dt.datetime:
    """Pay by invoice: when an unpaid invoice suspends service, the grace period after its
    due date."""
    return invoice.due_at + dt.timedelta(days=settings.INVOICE_GRACE_DAYS)


def status_owed(*, invoice: Invoice, now: dt.datetime) -> str | None:
    """The status an unpaid invoice alone forces on its subscription at `now`: suspended once
    every retry failed (or, paying by invoice, after the grace period), past due while it is
    being retried (or is overdue), None while nothing is wrong with it. While a dispute of
    it is open the suspension waits: it is past due at most (`BILLING_DISPUTE_PAUSES_DUNNING`).
    """
    owed = _status_owed_by_payment(invoice, now)
    if owed == Subscription.Status.SUSPENDED and support_selectors.invoice_payment_on_hold(
        invoice_id=invoice.pk, on_hold=getattr(invoice, "payment_on_hold", None)
    ):
        return Subscription.Status.PAST_DUE
    return owed


def _status_owed_by_payment(invoice: Invoice, now: dt.datetime) -> str | None:
    if invoice.status != Invoice.Status.OPEN:
        return None
    if invoice.organization.payment_terms == Organization.PaymentTerms.INVOICE:
        if now >= invoice_suspends_at(invoice=invoice):
            return Subscription.Status.SUSPENDED
        return Subscription.Status.PAST_DUE if now >= invoice.due_at else None
    collection: Collection | None = getattr(invoice, "collection", None)
    if collection is None or not collection.failures:
        return None
    if collection.state == Collection.State.EXHAUSTED:
        return Subscription.Status.SUSPENDED
    return Subscription.Status.PAST_DUE


@dataclass(frozen=True)
class Arrear:
    """An unpaid invoice that holds the subscription past due or suspended."""

    invoice: Invoice
    collection: Collection | None
    status: str  # what it forces: "suspended" (pay it to restore service) or "past_due"

    @property
    def suspends(self) -> bool:
        return self.status == Subscription.Status.SUSPENDED

    @property
    def on_hold(self) -> bool:
        """Under dispute: not retried, and suspending nothing, until it is decided."""
        return support_selectors.invoice_payment_on_hold(
            invoice_id=self.invoice.pk, on_hold=getattr(self.invoice, "payment_on_hold", None)
        )


def arrears(
    *, organization: Organization, now: dt.datetime, subscription: Subscription | None = None
) -> list[Arrear]:
    """The organization's (or one subscription's) unpaid invoices that weigh on its service,
    oldest first. One query."""
    invoices = Invoice.objects.filter(organization=organization, status=Invoice.Status.OPEN)
    if subscription is not None:
        invoices = invoices.filter(subscription=subscription)
    rows = []
    invoices = invoices.annotate(payment_on_hold=support_selectors.open_dispute_on_invoice())
    for invoice in invoices.select_related("collection", "organization").order_by(
        "issued_at", "pk"
    ):
        owed = status_owed(invoice=invoice, now=now)
        if owed is not None:
            rows.append(Arrear(invoice, getattr(invoice, "collection", None), owed))
    return rows


def standing_owed(*, subscription: Subscription, now: dt.datetime) -> str | None:
    """The status the subscription's unpaid invoices force together: the worst of them."""
    owed = {
        arrear.status
        for arrear in arrears(
            organization=subscription.organization, subscription=subscription, now=now
        )
    }
    for status in (Subscription.Status.SUSPENDED, Subscription.Status.PAST_DUE):
        if status in owed:
            return status
    return None


def payment_banner(
    *, organization: Organization, status: str | None, now: dt.datetime
) -> dict | None:
    """What every billing page says while the subscription is past due or suspended: the
    invoices whose payment restores service (those that suspend it), and the others still
    being retried or overdue, each with where collecting it stands. The status comes with the
    page's access check, so a page in good standing runs no query for it."""
    if status not in (Subscription.Status.PAST_DUE, Subscription.Status.SUSPENDED):
        return None
    owed = arrears(organization=organization, now=now)
    return {
        "status": status,
        "to_restore": [arrear for arrear in owed if arrear.suspends],
        "overdue": [arrear for arrear in owed if not arrear.suspends],
        "pays_automatically": (organization.payment_terms == Organization.PaymentTerms.AUTOMATIC),
    }


@dataclass(frozen=True)
class SandboxExample:
    """A test card or bank account the sandbox knows, and what it does."""

    number: str  # grouped as printed on the card
    name: str
    outcome: str


def sandbox_test_cards() -> list[SandboxExample]:
    """From the sandbox's own table, so the page never lists a card it does not know."""
    return [
        SandboxExample(_grouped(number), brand, _outcome(behaviour))
        for number, (brand, behaviour) in TEST_CARDS.items()
    ]


def sandbox_test_bank_accounts() -> list[SandboxExample]:
    return [
        SandboxExample(number, "Routing 110000000", _outcome(behaviour))
        for number, behaviour in TEST_BANK_ACCOUNTS.items()
    ]


def _grouped(number: str) -> str:
    """`4242 4242 4242 4242`; American Express prints 15 digits as 4-6-5."""
    if len(number) == 15:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _outcome(behaviour: str) -> str:
    if behaviour == "ok":
        return "Added; every payment succeeds."
    if behaviour == "decline_on_charge":
        return "Added; every payment is declined."
    return f"Refused when added: {decline_message(behaviour)}"


# --- the dunning board ----------------------------------------------------------------------

DUNNING_BOARD_LIMIT = 500
DUNNING_SORTS = {
    "days": lambda row: (-row.days_overdue, row.invoice.pk),
    "amount": lambda row: (-row.amount.amount, row.invoice.pk),
    "next_retry": lambda row: (row.next_retry_at is None, row.next_retry_at or row.suspends_at),
    "organization": lambda row: (row.invoice.organization.name.lower(), row.invoice.pk),
}


@dataclass(frozen=True)
class DunningRow:
    """One unpaid invoice in dunning: where it stands and when service stops."""

    invoice: Invoice
    stage: str  # "retry-1"… (card and bank debits), "overdue" (paying by invoice), "suspended"
    stage_label: str
    days_overdue: int
    attempts: int
    next_retry_at: dt.datetime | None
    suspends_at: dt.datetime | None  # None once suspended
    last_decline: str

    @property
    def amount(self):
        return self.invoice.total


@dataclass(frozen=True)
class DunningStage:
    key: str
    label: str
    rows: list[DunningRow]

    @property
    def totals(self) -> list[Money]:
        """The amount at risk, one sum per currency (never converted)."""
        sums: dict[str, Money] = {}
        for row in self.rows:
            currency = str(row.amount.currency)
            sums[currency] = sums.get(currency, Money(0, currency)) + row.amount
        return [sums[currency] for currency in sorted(sums)]


def _dunning_row(invoice: Invoice, now: dt.datetime, retries: list[int]) -> DunningRow | None:
    overdue = max((now - invoice.due_at).days, 0) if invoice.due_at else 0
    collection: Collection | None = getattr(invoice, "collection", None)
    if invoice.organization.payment_terms == Organization.PaymentTerms.INVOICE:
        if invoice.due_at is None or now < invoice.due_at:
            return None
        suspends_at = invoice_suspends_at(invoice=invoice)
        suspended = now >= suspends_at
        return DunningRow(
            invoice=invoice,
            stage="suspended" if suspended else "overdue",
            stage_label="Suspended" if suspended else "Overdue, paying by invoice",
            days_overdue=overdue,
            attempts=collection.failures if collection else 0,
            next_retry_at=None,
            suspends_at=None if suspended else suspends_at,
            last_decline="",
        )
    if collection is None or not collection.failures:
        return None
    if collection.state == Collection.State.EXHAUSTED:
        stage, label, suspends_at = "suspended", "Suspended", None
    else:
        stage = f"retry-{collection.failures}"
        label = f"Retry {collection.failures} of {len(retries)}"
        # The last retry: if it fails too, service is suspended then.
        suspends_at = collection.first_failed_at + dt.timedelta(days=retries[-1])
    return DunningRow(
        invoice=invoice,
        stage=stage,
        stage_label=label,
        days_overdue=overdue,
        attempts=collection.failures,
        next_retry_at=collection.next_retry_at,
        suspends_at=suspends_at,
        last_decline=collection.last_failure_message,
    )


def dunning_board(
    *,
    now: dt.datetime,
    stage: str = "",
    payment_terms: str = "",
    sort: str = "days",
) -> list[DunningStage]:
    """Every open invoice in dunning (a failed collection, or overdue when paying by
    invoice), grouped by stage: the retries in order, invoice payers overdue, then the
    suspended; sorted within each stage (`DUNNING_SORTS`, by days overdue unless told). One
    query; at most `DUNNING_BOARD_LIMIT` invoices, the longest overdue first."""
    retries = list(settings.PAYMENT_RETRY_DAYS) or [0]
    invoices = (
        Invoice.objects.filter(status=Invoice.Status.OPEN)
        .filter(
            Q(collection__failures__gt=0)
            | Q(organization__payment_terms=Organization.PaymentTerms.INVOICE, due_at__lte=now)
        )
        .select_related("organization", "collection", "subscription")
        .order_by("due_at", "pk")
    )
    if payment_terms:
        invoices = invoices.filter(organization__payment_terms=payment_terms)
    rows = [
        row
        for invoice in invoices[:DUNNING_BOARD_LIMIT]
        if (row := _dunning_row(invoice, now, retries)) is not None
        and (not stage or row.stage == stage)
    ]
    rows.sort(key=DUNNING_SORTS.get(sort, DUNNING_SORTS["days"]))
    order = [*(f"retry-{n}" for n in range(1, len(retries) + 1)), "overdue", "suspended"]
    stages = []
    for key in order:
        in_stage = [row for row in rows if row.stage == key]
        if in_stage:
            stages.append(DunningStage(key, in_stage[0].stage_label, in_stage))
    return stages
