from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ProjectState


def test_the_test_databases_djstripe_migration_makes_djstripes_tables():
    # dj-stripe's own migrations make its models' tables (`makemigrations --check` in
    # `make test`); the one the test databases are made with must make the same ones.
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert loader.migrations_module("djstripe")[0] == "tests.migrations.djstripe"

    changes = MigrationAutodetector(
        loader.project_state(),
        ProjectState.from_apps(apps),
        NonInteractiveMigrationQuestioner(specified_apps={"djstripe"}, dry_run=True),
    ).changes(graph=loader.graph, trim_to_apps={"djstripe"})

    assert "djstripe" not in changes, "write tests/migrations/djstripe/ again (README, Tests)"
