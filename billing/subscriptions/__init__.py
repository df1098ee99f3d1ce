"""Subscriptions: the status machine, billing and usage periods, trials, plan changes and their previews, cancellation."""
