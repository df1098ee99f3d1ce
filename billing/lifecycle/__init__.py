"""What happens over a subscription's life, and every orchestration that reaches into the
usage and payments apps: renewals and scheduled changes, plan changes that let AI employees
and numbers go, retention, the data export, the demo, and the page reads that combine
billing with usage. The only billing package that imports `usage` or `payments`."""
