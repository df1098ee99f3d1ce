"""Spend caps: hard monthly limits an organization sets on itself, checked by
`calls/authorize` (`usage.selectors.call_authorize`)."""
