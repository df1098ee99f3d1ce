import queue
import threading

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.pusher import pusher
from django_q.tasks import async_task

from tests.config.management import manage

OLD_KEY = "old-key-v5Qm2x8Lr4Tz9Wc1Nb7Jh3Gk6Fd0Sa-Yp_Ue^Io&Rq*Xw(Zv)Mt+Ln=Kj"
NEW_KEY = "new-key-c8Vn3Bq6Xm1Zr9Tw4Ls7Kd2Jh5Gf0Pa-Ue_Yo^Ri&Wq*Ez(Xt)Nm+Ub=Ck"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tasks_wait_in_the_queue(monkeypatch):
    """These tests look at the queue itself, so tasks are queued, not run at once."""
    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def secret_key(settings, monkeypatch):
    """Starts the process with a key, as a deploy does; django-q2 copies it at import."""

    def use(key: str, *, fallbacks: tuple[str, ...] = ()) -> None:
        settings.SECRET_KEY = key
        settings.SECRET_KEY_FALLBACKS = list(fallbacks)
        monkeypatch.setattr(Conf, "SECRET_KEY", key)

    return use


def handed_to_workers() -> list[dict]:
    """The tasks django-q2's pusher takes off the queue and gives the workers in one pass."""
    tasks = queue.Queue()
    one_pass = threading.Event()
    one_pass.set()
    pusher(tasks, one_pass, get_broker())
    return [tasks.get_nowait() for _ in range(tasks.qsize())]


def test_a_task_queued_before_the_key_was_rotated_still_reaches_the_workers(secret_key):
    secret_key(OLD_KEY)
    task_id = async_task("billing.tasks.renew_subscriptions")

    secret_key(NEW_KEY, fallbacks=(OLD_KEY,))
    tasks = handed_to_workers()

    assert [(task["id"], task["func"]) for task in tasks] == [
        (task_id, "billing.tasks.renew_subscriptions")
    ]


def test_a_task_signed_with_a_key_that_is_not_a_fallback_is_refused(secret_key):
    secret_key(OLD_KEY)
    async_task("billing.tasks.renew_subscriptions")

    secret_key(NEW_KEY)
    tasks = handed_to_workers()

    assert tasks == []
    assert not OrmQ.objects.exists()


def test_the_redis_broker_accepts_the_fallback_keys_too():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django_q.brokers import get_broker, redis_broker; "
        "from config.brokers import FallbackKeysBroker; broker = get_broker(); "
        "print(isinstance(broker, redis_broker.Redis), isinstance(broker, FallbackKeysBroker))",
        DEBUG="true",
        REDIS_URL="redis://127.0.0.1:6379/1",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"
