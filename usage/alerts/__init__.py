"""Usage alerts: thresholds on every allowance of the plan and on overage spend, crossed where
usage changes (`services.usage_alerts_evaluate`, in the transaction of the counter update),
and the projected-overage alert (`projection`)."""
