"""Call authorization over HTTP, as the platform asks it: gunicorn on loopback, 32 clients at
once on keep-alive connections. p50 and p99 latency and requests per second, against the
same load on /healthz, which touches neither the database nor the API; and what each
request costs in CPU time, gunicorn's worker processes' and PostgreSQL's server processes',
which the machine's load does not move as it moves the rates."""

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
from django.db import connection
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
    server_cpu: float = 0.0  # seconds, gunicorn's workers
    database_cpu: float = 0.0  # seconds, PostgreSQL's processes serving the benchmark

    def __add__(self, other: Load) -> Load:
        return Load(
            self.latencies + other.latencies,
            self.elapsed + other.elapsed,
            self.server_cpu + other.server_cpu,
            self.database_cpu + other.database_cpu,
        )

    @property
    def p50_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[49] * 1000

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.elapsed

    def cpu_us_per_request(self, seconds: float) -> float:
        return seconds / len(self.latencies) * 1e6


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
            healthz += measured_load(server, port, Request("GET", "/healthz"))
            authorized += measured_load(server, port, authorize)
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
    if healthz.server_cpu > 0:  # where /proc shows the processes' CPU time (Linux)
        floor = healthz.cpu_us_per_request(healthz.server_cpu)
        report.add(
            "http_authorize_server_cpu_us",
            authorized.cpu_us_per_request(authorized.server_cpu),
            "us",
            floor=floor,
        )
        if authorized.database_cpu > 0:  # PostgreSQL on this machine
            report.add(
                "http_authorize_database_cpu_us",
                authorized.cpu_us_per_request(authorized.database_cpu),
                "us",
                floor=floor,
            )


def measured_load(server: subprocess.Popen, port: int, request: Request) -> Load:
    """`load`, with the CPU time gunicorn's workers and the database's server processes
    spent meanwhile. A database process that starts during the load counts from zero."""
    workers = children(server.pid)
    before = cpu_seconds(workers + database_processes())
    measured = load(port, request)
    after = cpu_seconds(workers + database_processes())
    spent = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    return Load(
        measured.latencies,
        measured.elapsed,
        sum(spent.get(pid, 0.0) for pid in workers),
        sum(seconds for pid, seconds in spent.items() if pid not in workers),
    )


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def database_processes() -> list[int]:
    """PostgreSQL's processes serving the benchmark database, but this one's own."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time of each process that /proc shows (none elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended, or no /proc
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


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
