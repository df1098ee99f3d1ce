"""Each pytest process (one per xdist worker) migrates its in-memory SQLite test database
once, in most of a minute of CPU. The migrated database is kept under var/test-databases/,
named by the content of every migration file with the installed apps and Django's version,
and copied into the next run's test databases instead: a new or edited migration names
another one, which is then migrated afresh (and the old one deleted)."""

import contextlib
import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import django
from django.conf import settings
from django.core import management
from django.db import DEFAULT_DB_ALIAS, connections

TEMPLATES = Path(settings.BASE_DIR) / "var" / "test-databases"


def template_name() -> str:
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    digest = hashlib.sha256(
        repr((django.__version__, settings.INSTALLED_APPS, settings.MIGRATION_MODULES)).encode()
    )
    for key in sorted(loader.disk_migrations):
        module = sys.modules[loader.disk_migrations[key].__module__]
        digest.update(Path(module.__file__).read_bytes())
    return f"{digest.hexdigest()[:20]}.sqlite3"


def migrate_from_template(call_command):
    """`call_command` as the test database creation calls it, with `migrate` of an in-memory
    SQLite test database copied from the kept one when there is one, and kept when not."""

    def call(name, *args, **options):
        # As the creation calls it: every app, tables for those without migrations too.
        if name != "migrate" or args or not options.get("run_syncdb"):
            return call_command(name, *args, **options)
        connection = connections[options.get("database", DEFAULT_DB_ALIAS)]
        in_memory = connection.vendor == "sqlite" and connection.creation.is_in_memory_db(
            connection.settings_dict["NAME"]
        )
        if not in_memory:
            return call_command(name, **options)
        template = TEMPLATES / template_name()
        connection.ensure_connection()
        if template.exists():
            with contextlib.closing(sqlite3.connect(template)) as kept:
                kept.backup(connection.connection)
            return None
        call_command(name, **options)
        TEMPLATES.mkdir(parents=True, exist_ok=True)
        for stale in TEMPLATES.glob("*.sqlite3"):
            if stale != template:
                stale.unlink(missing_ok=True)
        # Written aside, then renamed: two workers migrating at once each write a whole one.
        partial = template.with_suffix(f".{os.getpid()}.partial")
        with contextlib.closing(sqlite3.connect(partial)) as kept:
            connection.connection.backup(kept)
        os.replace(partial, template)
        return None

    return call


@contextlib.contextmanager
def migrate_from_template_while_databases_are_made():
    # Django's test database creation imports `call_command` when it runs. So do commands
    # that run others (`seed_demo`): every call but that `migrate` passes through unchanged.
    real = management.call_command
    management.call_command = migrate_from_template(real)
    try:
        yield
    finally:
        management.call_command = real
