"""Jobs over the subscription's lifecycle that read the other apps (usage, payments)."""
