import contextlib
import importlib
import os
import runpy
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from gunicorn.config import Config as GunicornConfig

from tests.config.management import MANAGE, ROOT, clean_environment, manage

UNITS = ROOT / "config" / "deploy"
WEB, CLUSTER = "billing-web.service", "billing-qcluster.service"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit's sections and settings; a setting given twice keeps both values."""
    sections: dict[str, dict[str, list[str]]] = {}
    settings_of_section: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            settings_of_section = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        settings_of_section.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, str]:
    """The [Service] section, one value per setting (the last, as systemd reads it)."""
    return {key: values[-1] for key, values in unit(name)["Service"].items()}


def command_line(name: str) -> list[str]:
    """ExecStart split into words, with the unit's own Environment= defaults put in."""
    defaults = dict(
        assignment.split("=", 1)
        for line in unit(name)["Service"].get("Environment", [])
        for assignment in line.split()
    )
    words = service(name)["ExecStart"].split()
    for variable, value in defaults.items():
        words = [word.replace(f"${{{variable}}}", value) for word in words]
    return words


@pytest.mark.parametrize("name", [WEB, CLUSTER])
def test_stopping_a_unit_stops_every_process_it_started(name):
    stop = service(name)

    assert stop["KillMode"] == "control-group"
    assert stop["Restart"] in {"always", "on-failure"}
    assert int(stop["TimeoutStopSec"]) > 0


@pytest.mark.parametrize("name", [WEB, CLUSTER])
def test_a_unit_runs_the_checkout_unprivileged_with_the_settings_file(name):
    runs = service(name)
    program = Path(command_line(name)[0])

    assert runs["User"] not in {"", "root", "0"}
    assert runs["EnvironmentFile"].startswith("/")
    assert program.parent == Path(runs["WorkingDirectory"]) / ".venv" / "bin"


def test_the_cluster_unit_runs_qcluster_and_waits_for_the_longest_task():
    program, script, command = command_line(CLUSTER)

    assert (Path(program).name, script) == ("python", "manage.py")
    assert get_commands()[command] == "django_q"
    assert int(service(CLUSTER)["TimeoutStopSec"]) > settings.Q_CLUSTER["timeout"]


def test_the_web_unit_runs_gunicorn_on_the_wsgi_application_with_its_settings_file():
    program, *arguments = command_line(WEB)
    options = GunicornConfig().parser().parse_args(arguments)
    # Read as gunicorn reads it: from the checkout (the unit's working directory).
    settings_file = runpy.run_path(str(ROOT / options.config))

    assert Path(program).name == "gunicorn"
    assert options.args == ["config.wsgi"]
    assert callable(importlib.import_module("config.wsgi").application)
    assert settings_file["worker_class"] == "gthread"
    assert settings_file["workers"] >= 1 and settings_file["threads"] > 1
    assert int(service(WEB)["TimeoutStopSec"]) > settings_file["graceful_timeout"]


def test_stopping_the_cluster_as_its_unit_does_lets_the_running_task_finish(tmp_path):
    # Given a cluster working on a task, started in a process group of its own
    variables = {
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "Q_LOG_LEVEL": "INFO",
    }
    # The task queue's tables are all the cluster reads and writes.
    assert manage("migrate", "django_q", **variables).returncode == 0
    queue = "from django_q.tasks import async_task; async_task('time.sleep', 3)"
    assert manage("shell", "--no-imports", "-c", queue, **variables).returncode == 0
    log = tmp_path / "qcluster.log"
    with log.open("w") as output:
        cluster = subprocess.Popen(
            [*MANAGE, "qcluster"],
            cwd=ROOT,
            env=clean_environment(**variables),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: "processing" in log.read_text(), "the cluster to take the task", log)

        # When the unit's KillSignal reaches every process, as KillMode=control-group sends it
        os.killpg(cluster.pid, getattr(signal, service(CLUSTER)["KillSignal"]))

        # Then every process ends, and the task has finished
        wait_for(lambda: not group_alive(cluster), "every process to stop", log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
    finished = "from django_q.models import Success; print(Success.objects.count())"
    result = manage("shell", "--no-imports", "-c", finished, **variables)
    assert result.stdout.strip() == "1", log.read_text()


def group_alive(leader: subprocess.Popen) -> bool:
    leader.poll()  # reaps the main process once it has ended
    try:
        os.killpg(leader.pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition, what: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Waited {seconds} s for {what}:\n{log.read_text()}")
        time.sleep(0.2)
