"""Run the benchmarks: `make bench`, or `python bench/run.py [name …]` for those whose module
name contains one of the names (`python bench/run.py pages`).

Runs against a benchmark database made fresh each time, never the development one: SQLite
at var/bench/bench.sqlite3, or BENCH_DATABASE_URL (its database name must contain "bench",
as it is flushed). Prints a table and writes var/bench/latest.json. Goals are reported, not
asserted: the exit code is non-zero only when a benchmark could not run.

`--smoke` (`make bench-smoke`) runs every benchmark at a tiny size, in seconds, to prove
that each one still runs; it writes var/bench/smoke.json instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
OUTPUT_DIR = BASE_DIR / "var" / "bench"
SQLITE_PATH = OUTPUT_DIR / "bench.sqlite3"
RESULTS_PATH = OUTPUT_DIR / "latest.json"
SMOKE_RESULTS_PATH = OUTPUT_DIR / "smoke.json"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run the benchmarks; results go to var/bench/latest.json."
    )
    parser.add_argument("names", nargs="*", help="run only modules whose name contains one")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: only proves that every benchmark runs"
    )
    arguments = parser.parse_args()
    names = arguments.names

    modules = [
        path.stem
        for path in sorted(BENCH_DIR.glob("bench_*.py"))
        if not names or any(name in path.stem for name in names)
    ]
    if not modules:
        print(f"No benchmark module matches {' '.join(names)}.", file=sys.stderr)
        return 2

    # `python bench/run.py` puts bench/ on the path; the project root holds the packages.
    sys.path.insert(0, str(BASE_DIR))
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
    database = environ.Env.db_url_config(database_url)
    prepare_database(database)
    # Settings read these; the environment wins over .env, so the development database
    # is never configured in this process.
    os.environ["DATABASE_URL"] = database_url
    os.environ["ALLOWED_HOSTS"] = "testserver"  # the host django.test.Client sends
    # Production's settings, not development's: no debug cursor logging every query, no lock
    # order checks, static files from their manifest. Plain HTTP on loopback, so no redirect
    # to HTTPS.
    os.environ["DEBUG"] = "false"
    os.environ["BILLING_CHECK_LOCK_ORDER"] = "false"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 50)
    os.environ["STATIC_ROOT"] = str(OUTPUT_DIR / "static")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Read by bench.common, imported below.
    os.environ["BENCH_SMOKE"] = "1" if arguments.smoke else "0"
    results_path = SMOKE_RESULTS_PATH if arguments.smoke else RESULTS_PATH

    import django
    from django.core.management import call_command

    django.setup()
    from bench.common import Report, progress

    progress(f"migrating the benchmark database {database['NAME']}")
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)

    report = Report()
    failed = []
    for module in modules:
        # Every module starts from an empty database, so results do not depend on
        # which other modules ran before it.
        call_command("flush", verbosity=0, interactive=False)
        progress(f"running {module}")
        try:
            importlib.import_module(f"bench.{module}").run(report)
        except Exception:
            traceback.print_exc()
            failed.append(module)

    results_path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    print()
    print(report.table())
    print(f"\nWritten to {results_path.relative_to(BASE_DIR)}")
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def prepare_database(config: dict) -> None:
    """Start from nothing: remove the SQLite file, or create a missing PostgreSQL database
    (its tables are emptied after migrating)."""
    if "bench" not in Path(config["NAME"]).name:
        raise SystemExit(
            f"Refusing to use database {config['NAME']!r}: the benchmarks flush it, so its "
            'name must contain "bench".'
        )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL mode leaves -wal and -shm files beside the database; stale ones would corrupt it.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config['NAME']}{suffix}").unlink(missing_ok=True)
    elif config["ENGINE"] == "django.db.backends.postgresql":
        create_postgres_database(config)


def create_postgres_database(config: dict) -> None:
    import psycopg
    from psycopg import sql

    server = {
        key: config[setting]
        for key, setting in (
            ("host", "HOST"),
            ("port", "PORT"),
            ("user", "USER"),
            ("password", "PASSWORD"),
        )
        if config.get(setting)
    }
    # CREATE DATABASE cannot run inside a transaction, hence autocommit.
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as maintenance:
        exists = maintenance.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            maintenance.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"]))
            )


if __name__ == "__main__":
    sys.exit(main())
