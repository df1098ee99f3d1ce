"""What every benchmark module uses: the report it fills, timing, query counting, progress.

A module `bench/bench_<topic>.py` defines `run(report)` and adds one entry per measurement:

    report.add("overview_page_ms", page_ms, "ms", floor=healthz_ms)

The floor is the same kind of measurement of the cheapest comparable thing, taken in the same
run, so `ratio = value / floor` compares across machines where raw numbers do not. A goal,
when given, is the highest acceptable value (the lowest, for a rate given with
`higher_is_better=True`); it is reported, never asserted.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

_STARTED = time.perf_counter()
# `make bench-smoke` (`bench/run.py --smoke`) runs every benchmark at a tiny size, to prove
# that each one runs; its numbers mean nothing.
SMOKE = os.environ.get("BENCH_SMOKE") == "1"


def sized(full: int, *, smoke: int) -> int:
    """`full` in a real run, `smoke` in a smoke run."""
    return smoke if SMOKE else full


def progress(message: str) -> None:
    """One line of what is happening now, with the seconds since the run started."""
    print(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class Entry:
    name: str
    value: float
    unit: str
    floor: float
    goal: float | None = None
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.floor

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        met = self.value >= self.goal if self.higher_is_better else self.value <= self.goal
        return "met" if met else "MISSED"


class Report:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        floor: float,
        goal: float | None = None,
        higher_is_better: bool = False,
    ) -> None:
        if name in self.entries:
            raise ValueError(f"Benchmark entry {name!r} is reported twice.")
        if floor <= 0:
            raise ValueError(f"Benchmark entry {name!r} needs a positive floor, not {floor}.")
        self.entries[name] = Entry(name, value, unit, floor, goal, higher_is_better)

    def as_json(self) -> dict[str, dict[str, float | str]]:
        # Three decimals keep a microsecond on millisecond timings and hide float noise.
        return {
            entry.name: {
                "value": round(entry.value, 3),
                "unit": entry.unit,
                "floor": round(entry.floor, 3),
                "ratio": round(entry.ratio, 3),
            }
            for entry in self.entries.values()
        }

    def table(self) -> str:
        header = ("name", "value", "unit", "floor", "ratio", "goal", "verdict")
        rows = [
            (
                entry.name,
                _number(entry.value),
                entry.unit,
                _number(entry.floor),
                f"{entry.ratio:.2f}",
                ""
                if entry.goal is None
                else f"{'>=' if entry.higher_is_better else '<='} {_number(entry.goal)}",
                entry.verdict,
            )
            for entry in self.entries.values()
        ]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(7)]
        # Names and units read left-aligned, numbers right-aligned so their digits line up.
        numeric = {1, 3, 4}

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(
                cell.rjust(width) if column in numeric else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def best_median_ms(
    action: Callable[[], object],
    *,
    warmup: int = 5,
    rounds: int = 5,
    calls: int = 20,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Milliseconds one call of `action` takes: the best of `rounds` medians of `calls` calls.

    Warm-up calls fill caches (templates, URL resolvers, content types) first; the median
    ignores single hiccups and the best round ignores longer ones (GC, a busy neighbour).
    `clock=time.process_time` counts this process's CPU time instead of the wall clock:
    what the code costs, whatever else the machine runs (the database server's work aside).
    """
    if SMOKE:
        warmup, rounds, calls = 0, 1, 1
    for _ in range(warmup):
        action()
    medians = []
    for _ in range(rounds):
        durations = []
        for _ in range(calls):
            started = clock()
            action()
            durations.append(clock() - started)
        medians.append(statistics.median(durations))
    return min(medians) * 1000


def count_queries(action: Callable[[], object]) -> int:
    """How many SQL queries one call of `action` runs on the default database.

    Counted as they run: `CaptureQueriesContext` reads the connection's query log, which
    keeps the last 9,000 queries only, so once that many have run in the process (with
    DEBUG on, every query is logged) it counts nothing.
    """
    count = 0

    def counting(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        action()
    return count


def subscribed_employee(*, slug: str, now):
    """An organization on Professional monthly, ten days into its period (paying: a trial
    would start the period at its end), with one AI employee and a service token: what the
    platform-API benchmarks talk to."""
    from billing.accounts import services as account_services
    from billing.catalog import services as catalog_services
    from billing.subscriptions import services as subscription_services
    from usage import services as usage_services
    from usage.tokens.services import service_token_create

    plan = next(p for p in catalog_services.catalog_load() if p.code == "professional-monthly")
    organization = account_services.organization_create(
        name=slug.replace("-", " ").title(), slug=slug, billing_emails=f"billing@{slug}.example.com"
    )
    subscription_services.subscription_create(
        organization=organization,
        plan=plan,
        start=now - dt.timedelta(days=10),
        trial=False,
        now=now,
    )
    employee = usage_services.employee_create(organization=organization, name="Agent", now=now)
    _, token = service_token_create(name="bench", all_organizations=True)
    return organization, employee, token
