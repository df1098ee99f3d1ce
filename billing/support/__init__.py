"""Billing support: an organization's billing requests (questions, invoice copies, disputes
down to single calls, sales enquiries), their response targets in business time, the
conversation with billing support staff, and the decisions that correct an invoice by
credit note."""
