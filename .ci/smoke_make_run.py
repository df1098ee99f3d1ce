#!/usr/bin/env python3
"""`make run` on a fresh clone of HEAD, as a new user does, then a look around and a stop.

1. clone the repository at HEAD into a temporary folder;
2. `make run` there on a free port, in a process group of its own, with none of the
   project's variables set (every name `.env.example` lists is removed from the environment);
3. wait for /healthz;
4. sign in as the demo organization administrator (alice / billing-demo);
5. load /billing/ and follow it to Acme Dental's billing page;
6. stop the whole process group (make, runserver, qcluster and its workers) with SIGTERM,
   and check that no process of the run survives.

Exits non-zero naming the step that failed; whatever happens, nothing is left running and
the temporary folder is removed.
"""

from __future__ import annotations

import contextlib
import html.parser
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERNAME, PASSWORD = "alice", "billing-demo"
ORGANIZATION = "Acme Dental"
# A fresh clone installs its virtualenv first: minutes, not seconds.
STARTUP_SECONDS = 900
STOP_SECONDS = 60


class StepFailed(Exception):
    pass


class Links(html.parser.HTMLParser):
    """Every link of a page, as (href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


class Run:
    def __init__(self, folder: Path) -> None:
        self.clone = folder / "clone"
        self.log = folder / "make-run.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def clone_head(self) -> None:
        commit = git("rev-parse", "HEAD", cwd=ROOT)
        git("clone", "--quiet", "--no-checkout", str(ROOT), str(self.clone), cwd=ROOT)
        git("checkout", "--quiet", "--detach", commit, cwd=self.clone)
        print(f"  commit {commit[:12]} in {self.clone}")

    def start(self) -> None:
        settings = set(
            re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (self.clone / ".env.example").read_text(), re.M)
        )
        environment = {name: value for name, value in os.environ.items() if name not in settings}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["make", "run", "HOST=127.0.0.1", f"PORT={self.port}"],
                cwd=self.clone,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        print(f"  make run on port {self.port}, process group {self.process.pid}, log {self.log}")

    def wait_for_health(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StepFailed(f"make run exited with {self.process.returncode} first")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:
                    if response.read() == b"ok":
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(1)
        raise StepFailed(f"no answer within {STARTUP_SECONDS} s")

    def sign_in(self) -> None:
        login_url = f"{self.base}/accounts/login/"
        form = self.get(login_url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        if not token:
            raise StepFailed("the sign-in page has no CSRF token")
        fields = {"csrfmiddlewaretoken": token[1], "username": USERNAME, "password": PASSWORD}
        request = urllib.request.Request(
            login_url, data=urllib.parse.urlencode(fields).encode(), headers={"Referer": login_url}
        )
        with self.browser.open(request, timeout=60) as response:
            landed = urllib.parse.urlsplit(response.url).path
        if landed.startswith("/accounts/login/"):
            raise StepFailed(f"{USERNAME} / {PASSWORD} was not accepted")
        print(f"  signed in as {USERNAME}, landed on {landed}")

    def open_organization(self) -> None:
        page = self.get(f"{self.base}/billing/")
        links = Links()
        links.feed(page)
        hrefs = [href for href, text in links.links if text == ORGANIZATION]
        if not hrefs:
            raise StepFailed(f"/billing/ has no link to {ORGANIZATION}")
        url = urllib.parse.urljoin(f"{self.base}/billing/", hrefs[0])
        page = self.get(url)
        if ORGANIZATION not in page:
            raise StepFailed(f"{url} does not name {ORGANIZATION}")
        print(f"  {urllib.parse.urlsplit(url).path} shows {ORGANIZATION}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise StepFailed(f"make run still runs {STOP_SECONDS} s after SIGTERM") from error
        deadline = time.monotonic() + STOP_SECONDS
        while (survivors := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if survivors:
            raise StepFailed("these survived SIGTERM:\n" + "\n".join(survivors.values()))
        print("  every process of the run has stopped")

    def survivors(self) -> dict[int, str]:
        """Processes of the run still alive: in its session or process group (even one that
        left them), or working in the clone."""
        if self.process is None:
            return {}
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # Fields after the command's closing parenthesis: state, ppid, pgrp, session.
                _, pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1:4]
                cwd = os.readlink(entry / "cwd")
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue  # gone meanwhile, or not ours to read
            in_run = self.process.pid in (int(pgrp), int(session))
            if in_run or cwd == str(self.clone) or cwd.startswith(f"{self.clone}/"):
                found[int(entry.name)] = f"    {entry.name} {command}"
        return found

    def kill_everything(self) -> None:
        """Whatever a failed step left running (nothing, after a clean stop)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self.survivors():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def get(self, url: str) -> str:
        try:
            with self.browser.open(url, timeout=60) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            raise StepFailed(f"GET {url} answered {error.code}") from error

    def log_tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode:
        raise StepFailed(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="billing-smoke-"))
    run = Run(folder)
    steps = [
        ("clone HEAD into a temporary folder", run.clone_head),
        ("start make run", run.start),
        ("wait for /healthz", run.wait_for_health),
        (f"sign in as {USERNAME}", run.sign_in),
        (f"load /billing/ and {ORGANIZATION}'s page", run.open_organization),
        ("stop every process of the run", run.stop),
    ]
    step = ""
    try:
        for step, action in steps:
            print(f"smoke: {step}", flush=True)
            action()
    except (StepFailed, OSError) as error:
        print(f"\nsmoke FAILED at step '{step}': {error}", file=sys.stderr)
        tail = run.log_tail()
        if tail:
            print(f"\nLast lines of make run's output:\n{tail}", file=sys.stderr)
        return 1
    finally:
        run.kill_everything()
        shutil.rmtree(folder, ignore_errors=True)
    print("smoke: make run on a fresh clone works")
    return 0


if __name__ == "__main__":
    sys.exit(main())
