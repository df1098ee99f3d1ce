"""Benchmarks of the billing back office, run by `make bench` (see `bench/run.py`)."""
