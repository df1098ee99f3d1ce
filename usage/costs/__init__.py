"""Cost control: the upcoming invoice, spend this period, and costs by team and AI employee."""
