"""Every error code the product answers with, in one registry: its default message and the
one HTTP status it is answered with.

Statuses: 401 for a service token past its expiry, 404 for what is not there, 403 for what
is never the caller's to do or use, 409 for a quota, a limit or the state of a row (a
suspended subscription, a finalized invoice), 422 for input that is wrong whatever the
state. Pages and the admin show the message; the
platform API answers `{"code", "detail", …}` with the status; tests match on the code.
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus

UNAUTHORIZED = HTTPStatus.UNAUTHORIZED
NOT_FOUND = HTTPStatus.NOT_FOUND
FORBIDDEN = HTTPStatus.FORBIDDEN
CONFLICT = HTTPStatus.CONFLICT
INVALID = HTTPStatus.UNPROCESSABLE_ENTITY


class ErrorCode(StrEnum):
    """A stable code, equal to its string (`ErrorCode.SAME_PLAN == "same_plan"`)."""

    status: HTTPStatus
    message: str

    def __new__(cls, code: str, status: HTTPStatus, message: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.message = message
        return member

    # --- staff roles ---------------------------------------------------------------------
    ROLE_REQUIRED = (
        "role_required",
        FORBIDDEN,
        "Your staff role does not allow this: ask a superuser for the role it needs.",
    )
    AUDIT_APPEND_ONLY = (
        "audit_append_only",
        FORBIDDEN,
        "The audit log is never changed or deleted.",
    )

    # --- organizations, plans and subscriptions -------------------------------------------
    ORGANIZATION_NOT_FOUND = (
        "organization_not_found",
        NOT_FOUND,
        "There is no organization with that id.",
    )
    CURRENCY_MISMATCH = (
        "currency_mismatch",
        INVALID,
        "The organization bills in another currency.",
    )
    PLAN_NOT_OFFERED = (
        "plan_not_offered",
        FORBIDDEN,
        "This plan is not offered to the organization.",
    )
    PLAN_IN_USE = (
        "plan_in_use",
        CONFLICT,
        "This plan has subscribers, so its terms cannot change: create a new version instead.",
    )
    ALREADY_SUBSCRIBED = (
        "already_subscribed",
        CONFLICT,
        "The organization already has a live subscription.",
    )
    INVALID_ALLOCATION_RULE = (
        "invalid_allocation_rule",
        INVALID,
        "Choose how the fixed fee is split, and name a cost center only to give it all to one.",
    )
    NO_SUBSCRIPTION = (
        "no_subscription",
        CONFLICT,
        "The organization has no live subscription.",
    )
    INVALID_STATUS_TRANSITION = (
        "invalid_status_transition",
        CONFLICT,
        "The subscription cannot take that status from the one it has.",
    )
    SUBSCRIPTION_SUSPENDED = (
        "subscription_suspended",
        CONFLICT,
        "The subscription is suspended for non-payment: pay the open invoice to restore service.",
    )
    CANCELLATION_PENDING = (
        "cancellation_pending",
        CONFLICT,
        "The subscription is set to end with this period: keep it before changing plans.",
    )
    OVER_NEW_LIMITS = (
        "over_new_limits",
        CONFLICT,
        "Choose the AI employees to deactivate and the numbers to release for the new plan.",
    )
    SAME_PLAN = ("same_plan", CONFLICT, "The subscription is already on this plan.")
    NO_SCHEDULED_CHANGE = ("no_scheduled_change", CONFLICT, "No plan change is scheduled.")
    ALREADY_CANCELING = (
        "already_canceling",
        CONFLICT,
        "The subscription already ends with this period.",
    )
    NOT_CANCELING = ("not_canceling", CONFLICT, "The subscription is not set to end.")
    PERIOD_ENDED = (
        "period_ended",
        CONFLICT,
        "The period has ended: choose a plan to subscribe again.",
    )
    NOT_TRIALING = (
        "not_trialing",
        CONFLICT,
        "Only a subscription in its trial can be extended.",
    )
    TRIAL_NOT_EXTENDED = (
        "trial_not_extended",
        INVALID,
        "The new end must be after the current one.",
    )
    INVALID_TRIAL_LENGTH = (
        "invalid_trial_length",
        INVALID,
        "A feature trial lasts at least one day.",
    )
    FEATURE_TRIAL_ACTIVE = (
        "feature_trial_active",
        CONFLICT,
        "The organization is already trying this feature.",
    )
    UNKNOWN_FEATURE = ("unknown_feature", NOT_FOUND, "There is no feature with that code.")
    REASON_REQUIRED = ("reason_required", INVALID, "Say why.")

    # --- invoices, credits and discounts --------------------------------------------------
    INVOICE_FINALIZED = (
        "invoice_finalized",
        CONFLICT,
        "The invoice is finalized: issue a credit note to correct it.",
    )
    INVOICE_NOT_VOIDABLE = (
        "invoice_not_voidable",
        CONFLICT,
        "Only open invoices can be voided.",
    )
    INVOICE_NOT_PAYABLE = (
        "invoice_not_payable",
        CONFLICT,
        "Only open invoices can be paid.",
    )
    INVOICE_NOT_CREDITABLE = (
        "invoice_not_creditable",
        CONFLICT,
        "Credit notes correct open or paid invoices.",
    )
    CREDIT_NOTE_TOO_LARGE = (
        "credit_note_too_large",
        INVALID,
        "A credit note can be at most what is left to credit on the invoice.",
    )
    INVALID_CREDIT_KIND = (
        "invalid_credit_kind",
        INVALID,
        "Credits granted are promotional, referral or goodwill.",
    )
    LEDGER_APPEND_ONLY = (
        "ledger_append_only",
        FORBIDDEN,
        "Balance entries are never changed or deleted; add another.",
    )
    COUPON_INACTIVE = ("coupon_inactive", CONFLICT, "The coupon can no longer be given.")
    DISCOUNT_EXISTS = ("discount_exists", CONFLICT, "The organization already has a discount.")

    # --- promotions and referrals -------------------------------------------------------
    PROMOTION_CODE_UNKNOWN = (
        "promotion_code_unknown",
        NOT_FOUND,
        "There is no promotion with that code.",
    )
    PROMOTION_NOT_STARTED = (
        "promotion_not_started",
        CONFLICT,
        "The promotion has not started yet.",
    )
    PROMOTION_ENDED = ("promotion_ended", CONFLICT, "The promotion has ended.")
    PROMOTION_ALREADY_REDEEMED = (
        "promotion_already_redeemed",
        CONFLICT,
        "The organization has already redeemed this promotion code.",
    )
    PROMOTION_LIMIT_REACHED = (
        "promotion_limit_reached",
        CONFLICT,
        "The promotion has been redeemed as many times as it may be.",
    )
    REFERRAL_LINK_INVALID = ("referral_link_invalid", NOT_FOUND, "That referral link is not valid.")
    SELF_REFERRAL = ("self_referral", FORBIDDEN, "An organization cannot refer itself.")
    ALREADY_REFERRED = (
        "already_referred",
        CONFLICT,
        "The organization was already referred: a referral counts once.",
    )
    REFERRAL_TOO_LATE = (
        "referral_too_late",
        CONFLICT,
        "Referrals are for organizations that have not paid an invoice yet.",
    )

    # --- AI employees, phone numbers and usage --------------------------------------------
    EMPLOYEE_NOT_FOUND = (
        "employee_not_found",
        NOT_FOUND,
        "The organization has no AI employee with that id.",
    )
    UNKNOWN_EMPLOYEE = (
        "unknown_employee",
        NOT_FOUND,
        "That AI employee belongs to another organization.",
    )
    EMPLOYEE_QUOTA_REACHED = (
        "employee_quota_reached",
        CONFLICT,
        "Every AI employee the plan allows is active: upgrade, or deactivate one to free a place.",
    )
    EMPLOYEE_INACTIVE = (
        "employee_inactive",
        CONFLICT,
        "The AI employee is deactivated; reactivate it first.",
    )
    EMPLOYEE_OUTBOUND_ONLY = (
        "employee_outbound_only",
        CONFLICT,
        "The AI employee only places calls and cannot answer a number.",
    )
    NO_EMPLOYEES = ("no_employees", CONFLICT, "The organization has no active AI employees.")
    PHONE_NUMBER_NOT_FOUND = (
        "phone_number_not_found",
        NOT_FOUND,
        "The organization has no phone number with that id.",
    )
    PHONE_NUMBER_LIMIT_REACHED = (
        "phone_number_limit_reached",
        CONFLICT,
        "Every phone number the plan allows is in use: release one or upgrade for more.",
    )
    NUMBER_ALREADY_HELD = (
        "number_already_held",
        CONFLICT,
        "The number is already one of the organization's.",
    )
    NUMBER_RELEASED = (
        "number_released",
        CONFLICT,
        "The number was released by this organization and cannot come back.",
    )
    NUMBER_UNAVAILABLE = ("number_unavailable", CONFLICT, "The number is not available.")
    NO_RATE = ("no_rate", INVALID, "No numbers of that type are offered there.")
    UNLIMITED_ALLOWANCE = (
        "unlimited_allowance",
        INVALID,
        "The plan includes unlimited seconds: give the seconds per month.",
    )
    INVALID_REPORT = ("invalid_report", INVALID, "The report has invalid fields.")
    CALL_CONFLICT = (
        "call_conflict",
        CONFLICT,
        "A call id stands for one call: report it again only unchanged.",
    )

    # --- notifications and usage alerts -----------------------------------------------------
    WEBHOOK_URL_REFUSED = (
        "webhook_url_refused",
        INVALID,
        "Webhooks go to a public HTTPS address.",
    )
    THRESHOLD_INVALID = ("threshold_invalid", INVALID, "A threshold is more than zero.")
    RECIPIENTS_REQUIRED = (
        "recipients_required",
        INVALID,
        "E-mailed notices sent only to chosen members need at least one chosen member.",
    )

    # --- spend caps ---------------------------------------------------------------------
    SPEND_CAP_REACHED = (
        "spend_cap_reached",
        CONFLICT,
        "The organization's monthly overage spend cap is reached: an administrator can raise it.",
    )
    EMPLOYEE_CAP_REACHED = (
        "employee_cap_reached",
        CONFLICT,
        "The AI employee's monthly call-time cap is reached: an administrator can raise it.",
    )
    COST_CENTER_CAP_REACHED = (
        "cost_center_cap_reached",
        CONFLICT,
        "The cost center's monthly call-time cap is reached: an administrator can raise it.",
    )
    CAP_ABOVE_PLAN_CAP = (
        "cap_above_plan_cap",
        INVALID,
        "An overage spend cap is at most the plan's own overage cap.",
    )
    CAP_INVALID = (
        "cap_invalid",
        INVALID,
        "A call-time cap is more than zero; an overage spend cap is zero or more.",
    )
    COST_CENTER_NOT_FOUND = (
        "cost_center_not_found",
        NOT_FOUND,
        "No AI employee of the organization is in that cost center.",
    )
    BUDGET_INVALID = ("budget_invalid", INVALID, "A budget is more than zero.")
    NO_OVERAGE_TO_CAP = (
        "no_overage_to_cap",
        CONFLICT,
        "The plan does not charge overage, so there is no overage spend to cap.",
    )

    # --- signing in ---------------------------------------------------------------------
    WRONG_CODE = (
        "wrong_code",
        INVALID,
        "That code is not the one your authenticator app shows now.",
    )

    # --- the platform API's service tokens -------------------------------------------------
    TOKEN_EXPIRED = (
        "token_expired",
        UNAUTHORIZED,
        "This service token has expired: ask for a new one.",
    )
    TOKEN_OUT_OF_SCOPE = (
        "token_out_of_scope",
        FORBIDDEN,
        "This service token does not reach that organization.",
    )
    TOKEN_SCOPE_UNCLEAR = (
        "token_scope_unclear",
        INVALID,
        "A token reaches every organization or names the ones it reaches: one of the two.",
    )

    # --- payment methods and payments -----------------------------------------------------
    DUPLICATE_METHOD = (
        "duplicate_method",
        CONFLICT,
        "This payment method is already on file: nothing was added.",
    )
    METHOD_REMOVED = ("method_removed", CONFLICT, "That payment method has been removed.")
    INVALID_ORDER = ("invalid_order", INVALID, "List every payment method exactly once.")
    EXPIRY_REQUIRED = ("expiry_required", INVALID, "A card needs its expiry month and year.")
    LAST_METHOD = (
        "last_method",
        CONFLICT,
        "This is your only payment method and your subscription renews automatically. "
        "Add another method before removing this one.",
    )
    DEFAULT_METHOD = (
        "default_method",
        CONFLICT,
        "This is your default payment method: make another one the default first.",
    )
    REFERENCE_REQUIRED = ("reference_required", INVALID, "Enter the transfer's reference.")
    INVOICE_NOT_OPEN = ("invoice_not_open", CONFLICT, "The invoice is not open.")
    NOT_REFUNDABLE = (
        "not_refundable",
        CONFLICT,
        "Only a successful card or bank charge can be refunded.",
    )
    REFUND_TOO_LARGE = (
        "refund_too_large",
        INVALID,
        "A refund can be at most what is left of the charge.",
    )
    PROCESSOR_NOT_CONFIGURED = (
        "processor_not_configured",
        CONFLICT,
        "This payment method cannot be charged by the configured processor: add it again.",
    )

    # The processor's refusals of a method, in its own words: the method given is unusable.
    CARD_DECLINED = ("card_declined", INVALID, "The card was declined by its bank.")
    INSUFFICIENT_FUNDS = ("insufficient_funds", INVALID, "The card has insufficient funds.")
    EXPIRED_CARD = ("expired_card", INVALID, "The card has expired.")
    FRAUDULENT = (
        "fraudulent",
        INVALID,
        "The bank blocked the charge as possibly fraudulent; the card holder should call the bank.",
    )
    PROCESSING_ERROR = (
        "processing_error",
        INVALID,
        "The card could not be processed because of an error at the processor; try again later.",
    )
    INCORRECT_CVC = ("incorrect_cvc", INVALID, "The card's security code is incorrect.")
    ACCOUNT_CLOSED = ("account_closed", INVALID, "The bank account is closed.")
    ACCOUNT_INVALID = ("account_invalid", INVALID, "The bank account is not valid.")
    SETUP_INCOMPLETE = (
        "setup_incomplete",
        INVALID,
        "The payment method was not set up; please add it again.",
    )
    UNSUPPORTED_METHOD = (
        "unsupported_method",
        INVALID,
        "Only a card or a US bank account can pay invoices.",
    )
    RESOURCE_MISSING = (
        "resource_missing",
        INVALID,
        "Stripe does not know that payment method.",
    )
    INVALID_REQUEST = (
        "invalid_request",
        INVALID,
        "Stripe refused the request for that payment method.",
    )

    # --- billing requests and disputes ------------------------------------------------------
    REQUEST_KIND_INVALID = (
        "request_kind_invalid",
        INVALID,
        "Choose what the request is about: a question, an invoice copy, a dispute or sales.",
    )
    INVOICE_NOT_FOUND = (
        "invoice_not_found",
        NOT_FOUND,
        "The organization has no issued invoice with that number.",
    )
    LINE_NOT_FOUND = ("line_not_found", NOT_FOUND, "The invoice has no line with that id.")
    NOT_A_CALL_LINE = (
        "not_a_call_line",
        INVALID,
        "Only a call overage line lists the calls it charges.",
    )
    CALLS_REQUIRED = ("calls_required", INVALID, "Choose at least one call of the line's month.")
    AMOUNT_IN_QUESTION_TOO_LARGE = (
        "amount_in_question_too_large",
        INVALID,
        "The amount in question can be at most what the line (or invoice) charges.",
    )
    DISPUTE_REASON_REQUIRED = (
        "dispute_reason_required",
        INVALID,
        "Choose why the calls are disputed.",
    )
    MESSAGE_REQUIRED = ("message_required", INVALID, "Write a message.")
    REQUEST_CLOSED = (
        "request_closed",
        CONFLICT,
        "The request is decided: open a new one to ask again.",
    )
    REFUND_NOT_PERMITTED = (
        "refund_not_permitted",
        FORBIDDEN,
        "Refunding to a card needs the permission to make refunds: credit the balance instead.",
    )
    APPROVAL_TOO_LARGE = (
        "approval_too_large",
        INVALID,
        "An approval is more than zero and at most the amount in question.",
    )
    NOTHING_TO_APPROVE = (
        "nothing_to_approve",
        CONFLICT,
        "The request questions no amount on an invoice: answer or decline it.",
    )
    ATTACHMENT_TYPE = (
        "attachment_type",
        INVALID,
        "Attach a PDF, PNG or JPEG file.",
    )
    ATTACHMENT_TOO_LARGE = (
        "attachment_too_large",
        INVALID,
        "An attachment is at most 5 MB.",
    )


class BillingError(Exception):
    """A refused billing operation. `code` is a registered `ErrorCode`; `message` is its
    default unless the raise site says more; `details` go into the API's answer."""

    def __init__(self, code: ErrorCode, message: str | None = None, **details):
        if not isinstance(code, ErrorCode):
            raise TypeError(f"{code!r} is not a registered ErrorCode.")
        self.code = code
        self.message = message or code.message
        self.details = details
        super().__init__(self.message)

    @property
    def status(self) -> HTTPStatus:
        return self.code.status
