"""Invoices and their lines, credits, coupons, taxes, and the invoice document (PDF)."""
