"""Call authorization over HTTP, as the platform asks it: gunicorn on loopback, 32 clients at
once on keep-alive connections. p50 and p99 latency and requests per second, against the
same load on /healthz, which touches neither the database nor the API."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from bench.common import SMOKE, Report, progress, sized, subscribed_employee

CLIENTS = sized(32, smoke=4)
REQUESTS = sized(6_400, smoke=40)  # per endpoint: 200 for each client
# The two endpoints take turns, a share of the requests each time, so that a busy moment
# on the machine slows both alike.
ROUNDS = sized(4, smoke=1)
DEADLINE_SECONDS = 120  # per endpoint; a slower run is reported as a failure
# Against /healthz on the same server: at least 0.8× its requests per second, and a p99
# latency at most 1.5× its own.
GOAL_RPS_SHARE = 0.8
GOAL_P99_RATIO = 1.5
LOG_PATH = settings.BASE_DIR / "var" / "bench" / "gunicorn.log"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Load:
    latencies: list[float]  # seconds
    elapsed: float  # seconds

    def __add__(self, other: Load) -> Load:
        return Load(self.latencies + other.latencies, self.elapsed + other.elapsed)

    @property
    def p50_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[49] * 1000

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.elapsed


def run(report: Report) -> None:
    progress("subscribing an organization")
    now = timezone.now()
    organization, employee, token = subscribed_employee(slug="bench-realty", now=now)
    authorize = Request(
        "POST",
        f"/api/v1/orgs/{organization.slug}/calls/authorize",
        json.dumps({"employee_id": employee.pk}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )

    port = free_port()
    progress(f"starting gunicorn on 127.0.0.1:{port} with config/gunicorn.py")
    server = start_gunicorn(port)
    healthz = authorized = Load([], 0.0)
    try:
        wait_until_up(server, port)
        for round_number in range(ROUNDS):
            progress(
                f"round {round_number + 1} of {ROUNDS}: {REQUESTS // ROUNDS:,} requests to "
                f"/healthz, then as many authorizations, from {CLIENTS} clients"
            )
            healthz += load(port, Request("GET", "/healthz"))
            authorized += load(port, authorize)
    finally:
        stop(server)

    report.add("http_authorize_p50_ms", authorized.p50_ms, "ms", floor=healthz.p50_ms)
    report.add(
        "http_authorize_p99_ms",
        authorized.p99_ms,
        "ms",
        floor=healthz.p99_ms,
        goal=GOAL_P99_RATIO * healthz.p99_ms,
    )
    report.add(
        "http_authorize_rps",
        authorized.requests_per_second,
        "req/s",
        floor=healthz.requests_per_second,
        goal=GOAL_RPS_SHARE * healthz.requests_per_second,
        higher_is_better=True,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    """The production configuration (config/gunicorn.py) on the benchmark database; its
    output goes to a log."""
    environment = {
        **os.environ,  # with bench/run.py's DATABASE_URL: the benchmark database
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        # A smoke run only proves that the benchmark runs: one small worker starts fastest.
        **({"WEB_CONCURRENCY": "1", "WEB_THREADS": "2"} if SMOKE else {}),
    }
    LOG_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOG_PATH.open("w") as log:
        return subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "config.wsgi",
                "--config=config/gunicorn.py",
                f"--bind=127.0.0.1:{port}",
                "--no-control-socket",  # its default path is shared with any other gunicorn
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(server: subprocess.Popen, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}; see {LOG_PATH}.")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s; see {LOG_PATH}.")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def load(port: int, request: Request) -> Load:
    """`REQUESTS // ROUNDS` requests from `CLIENTS` threads, each on its own keep-alive
    connection."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_SECONDS

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        try:
            for _ in range(REQUESTS // ROUNDS // CLIENTS):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not done within {DEADLINE_SECONDS} s")
                started = time.perf_counter()
                connection.request(
                    request.method, request.path, body=request.body, headers=request.headers or {}
                )
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{request.path} answered {response.status}: {body[:200]}")
                mine.append(time.perf_counter() - started)
        except Exception as error:  # reported below, after every client has stopped
            with lock:
                errors.append(repr(error))
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, the first with {errors[0]}")
    return Load(latencies, elapsed)
