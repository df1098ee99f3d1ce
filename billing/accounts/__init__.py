"""Organizations and what they control of their own account: the billing details."""
