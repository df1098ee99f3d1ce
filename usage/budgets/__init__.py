"""Budgets and forecasts: the month's spend so far, where it ends at this pace, budget
alerts, and scenarios on each plan."""
